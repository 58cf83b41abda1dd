#include "store/event.hpp"

#include <chrono>

namespace botbus::store {

std::string stream::channel(std::string_view name) {
    std::string s{"ch/"};
    s.append(name);
    return s;
}

std::string stream::mailbox(std::string_view bot) {
    std::string s{"dm/"};
    s.append(bot);
    return s;
}

std::string stream::workflow(std::string_view workflow_id) {
    std::string s{"wf/"};
    s.append(workflow_id);
    return s;
}

std::string stream::run(std::string_view run_id) {
    std::string s{"run/"};
    s.append(run_id);
    return s;
}

std::int64_t now_us() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace botbus::store
