#pragma once

#include <pthread.h>
#include <signal.h>

namespace vigil {

/// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts afterwards, and
/// returns the set for sigwait(): servers take stop signals on one thread of their choosing
/// instead of in an async handler. Call before any thread starts.
inline sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

}  // namespace vigil
