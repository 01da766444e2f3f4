// A member that keeps a groupcache-style peer pool current, in C++17.
//
//     member NAME SURVEY_URL PUBLISH_URL SNAPSHOT_URL [KEY=VALUE]...
//
// Same behaviour and output as examples/c/member.c: prints "joined NAME", then
// "pool: NAME NAME ..." on every change of the member set, until SIGINT/SIGTERM.
// Build: c++ -std=c++17 member.cpp $(pkg-config --cflags --libs gopherdiscovery)
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include <pthread.h>
#include <signal.h>

#include <gopherdiscovery.hpp>

namespace gd = gopherdiscovery;

// The application's pool, replaced whole on every change.
class Pool {
 public:
  void set(const std::vector<std::string>& peers) {
    std::lock_guard<std::mutex> g(mu_);
    peers_ = peers;
    std::string line = "pool:";
    for (const auto& p : peers_) line += " " + p;
    if (peers_.empty()) line += " -";
    std::cout << line << std::endl;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> peers_;
};

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: " << argv[0] << " NAME SURVEY_URL PUBLISH_URL SNAPSHOT_URL [KEY=VALUE]...\n";
    return 2;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  try {
    Pool pool;
    gd::ClientOptions opts;
    opts.name = argv[1];
    opts.surveys = {argv[2]};
    for (int i = 5; i < argc; ++i) {
      std::string kv = argv[i];
      auto eq = kv.find('=');
      if (eq == std::string::npos) {
        std::cerr << "member: expected KEY=VALUE, got " << kv << "\n";
        return 2;
      }
      opts.metadata[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    gd::SubscriberOptions watch;
    watch.publish = argv[3];
    watch.snapshot = argv[4];
    watch.on_peers = [&pool](const std::vector<std::string>& peers) { pool.set(peers); };
    opts.watch = watch;

    gd::Client member(opts);
    std::cout << "joined " << opts.name << std::endl;

    int sig = 0;
    sigwait(&stop, &sig);
    member.close();
  } catch (const gd::Error& e) {
    std::cerr << "member: " << e.what() << " (" << gd_strerror(e.code()) << ")\n";
    return 1;
  }
  return 0;
}
