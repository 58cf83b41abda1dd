// A fixture for the layering check's own test: the client library reaching
// into the store. Never compiled.
#include "store/store.hpp"
