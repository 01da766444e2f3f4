// A C++ program outside the source tree, built with CMake against an installed
// gopherdiscovery (find_package). Prints "outside c++ ok" and exits 0 on success.
#include <condition_variable>
#include <chrono>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include <gopherdiscovery.hpp>

namespace gd = gopherdiscovery;

int main() {
  try {
    gd::ServerOptions so;
    so.survey = so.publish = so.snapshot = "tcp://127.0.0.1:0";
    gd::Server server(so);

    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> seen;
    gd::SubscriberOptions w;
    w.publish = server.publish_url();
    w.snapshot = server.snapshot_url();
    w.on_peers = [&](const std::vector<std::string>& peers) {
      std::lock_guard<std::mutex> g(mu);
      seen = peers;
      cv.notify_all();
    };
    gd::ClientOptions o;
    o.name = "outside-cpp";
    o.surveys = {server.survey_url()};
    o.watch = w;
    gd::Client member(o);

    std::unique_lock<std::mutex> lock(mu);
    bool ok = cv.wait_for(lock, std::chrono::seconds(60),
                          [&] { return seen == std::vector<std::string>{"outside-cpp"}; });
    lock.unlock();
    if (!ok || member.subscriber().peers() != std::vector<std::string>{"outside-cpp"}) {
      std::cerr << "outside: never saw itself in the peer list\n";
      return 1;
    }
    std::cout << "outside c++ ok (gopherdiscovery " << gd::version() << ")" << std::endl;
  } catch (const gd::Error& e) {
    std::cerr << "outside: " << e.what() << " (code " << e.code() << ")\n";
    return 1;
  }
  return 0;
}
