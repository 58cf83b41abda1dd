// A fixture for the layering check's own test: the protocol layer reaching
// up into the server and out to ZeroMQ. Never compiled.
#pragma once

#include <zmq.hpp>

#include "bus/server/server.hpp"
