#include "server/internal/deferred_services.h"

namespace plinth::server::internal {

void RpcGate::Open() {
  MutexLock lock(&mu_);
  if (state_ == State::kStarting) state_ = State::kOpen;
}

void RpcGate::Close() {
  MutexLock lock(&mu_);
  state_ = State::kClosed;
}

bool RpcGate::WaitUntilIdle(std::chrono::system_clock::time_point deadline) {
  MutexLock lock(&mu_);
  while (in_flight_ > 0) {
    if (!idle_.WaitUntil(deadline) && std::chrono::system_clock::now() >= deadline) break;
  }
  return in_flight_ == 0;
}

RpcGate::Pass::Pass(RpcGate* gate) : gate_(gate) {
  MutexLock lock(&gate_->mu_);
  switch (gate_->state_) {
    case State::kStarting:
      status_ = gate_->not_ready_;
      return;
    case State::kClosed:
      status_ = gate_->closed_;
      return;
    case State::kOpen:
      admitted_ = true;
      ++gate_->in_flight_;
      return;
  }
}

RpcGate::Pass::~Pass() {
  if (!admitted_) return;
  MutexLock lock(&gate_->mu_);
  if (--gate_->in_flight_ == 0) gate_->idle_.SignalAll();
}

}  // namespace plinth::server::internal
