// Authenticated meshes through the C++ wrapper: keys in ServerOptions,
// ClientOptions and SubscriberOptions (a watching client's subscriber takes the
// client's), Auth, key_id, set_keyring, the auth_* statistics, and Error for a
// refused keyring. Prints "ok - NAME" / "not ok - NAME" lines (tests/c/run.sh
// counts them); run under AddressSanitizer + LeakSanitizer.
#include <condition_variable>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gopherdiscovery.hpp>

namespace gd = gopherdiscovery;

namespace {

int failures = 0;

#define EXPECT(cond)                                                                     \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::cerr << "  " << __FILE__ << ":" << __LINE__ << ": check failed: " #cond "\n"; \
      return false;                                                                      \
    }                                                                                    \
  } while (0)

void run(const char* name, const std::function<bool()>& test) {
  bool ok = false;
  try {
    ok = test();
  } catch (const gd::Error& e) {
    std::cerr << "  " << name << ": gd::Error " << e.code() << ": " << e.what() << "\n";
  }
  if (!ok) failures++;
  std::cout << (ok ? "ok - " : "not ok - ") << name << std::endl;
}

// Waits (up to 60 s) for `cond`; never a fixed sleep.
bool eventually(const std::function<bool()>& cond) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

gd::Key key_of(std::uint8_t first, std::uint8_t step) {
  gd::Key k{};
  for (std::size_t i = 0; i < k.size(); i++) k[i] = static_cast<std::uint8_t>(first + step * i);
  return k;
}

const gd::Key K1 = key_of(0, 1);  // bytes 0, 1, ..., 31: id "03defadb"
const gd::Key K2 = key_of(0x42, 0);

gd::ServerOptions server_options(std::vector<gd::Key> keys) {
  gd::ServerOptions so;
  so.survey = so.publish = so.snapshot = "tcp://127.0.0.1:0";
  so.interval = std::chrono::milliseconds(200);
  so.evict_after = 50;
  so.keys = std::move(keys);
  so.mesh_label = "cpp-tests";
  return so;
}

// A peer list that callbacks write and the test waits on.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> peers;
  gd::PeersCallback callback() {
    return [this](const std::vector<std::string>& p) {
      std::lock_guard<std::mutex> g(mu);
      peers = p;
      cv.notify_all();
    };
  }
  bool wait_for(const std::vector<std::string>& want) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(60), [&] { return peers == want; });
  }
};

bool key_id_and_wire_version() {
  EXPECT(gd::key_id(K1) == "03defadb");
  EXPECT(gd::key_id(K2).size() == 8 && gd::key_id(K2) != gd::key_id(K1));
  EXPECT(gd::wire_version() == 3);
  return true;
}

bool a_keyed_client_joins_and_rotates() {
  gd::Server server(server_options({K1}));
  Seen seen;
  gd::SubscriberOptions w;  // no keyring of its own: takes the client's
  w.publish = server.publish_url();
  w.snapshot = server.snapshot_url();
  w.on_peers = seen.callback();
  gd::ClientOptions o;
  o.name = "cpp-keyed";
  o.surveys = {server.survey_url()};
  o.keys = {K1};
  o.mesh_label = "cpp-tests";
  o.watch = w;
  gd::Client member(o);
  EXPECT(seen.wait_for({"cpp-keyed"}));

  gd::ClientOptions nokey;
  nokey.name = "cpp-keyless";
  nokey.surveys = {server.survey_url()};
  gd::Client keyless(nokey);
  EXPECT(eventually([&] { return server.stats().auth_unsigned >= 1; }));

  // Rotation: K2 as secondary, then primary, then alone.
  for (const auto& keys : std::vector<std::vector<gd::Key>>{{K1, K2}, {K2, K1}, {K2}}) {
    server.set_keyring(keys);
    member.set_keyring(keys);  // and its subscriber's, which took the client's
    auto answered = member.stats().surveys_answered;
    auto publications = member.subscriber().stats().publications;
    EXPECT(eventually([&] { return member.stats().surveys_answered >= answered + 2; }));
    EXPECT(eventually([&] { return member.subscriber().stats().publications >= publications + 2; }));
  }
  EXPECT(member.subscriber().peers() == std::vector<std::string>{"cpp-keyed"});
  EXPECT(server.stats().auth_bad_mac == 0 && member.stats().auth_bad_mac == 0);
  EXPECT(member.subscriber().stats().auth_unknown_key == 0);
  EXPECT(server.stats().left_timeout == 0 && server.stats().challenges >= 1);
  // The server's keyring now: K2 alone, which verified the member's answers.
  auto use = server.key_use();
  EXPECT(use.size() == 1 && use[0].first == gd::key_id(K2) && use[0].second > 0);
  return true;
}

bool permissive_takes_keyless_members() {
  gd::ServerOptions so = server_options({K1});
  so.auth = gd::Auth::Permissive;
  gd::Server server(so);
  Seen seen;
  gd::SubscriberOptions w;
  w.publish = server.publish_url();
  w.snapshot = server.snapshot_url();
  w.keys = {K1};
  w.mesh_label = "cpp-tests";
  w.on_peers = seen.callback();
  gd::Subscriber sub(w);
  gd::ClientOptions o;
  o.name = "cpp-keyless";
  o.surveys = {server.survey_url()};
  gd::Client keyless(o);
  EXPECT(seen.wait_for({"cpp-keyless"}));
  EXPECT(server.stats().auth_unsigned_accepted >= 1);
  sub.set_keyring({K1, K2});
  return true;
}

bool a_refused_keyring_throws() {
  gd::ServerOptions so = server_options({K1, K1});
  try {
    gd::Server server(so);
    std::cerr << "  a duplicate key was accepted\n";
    return false;
  } catch (const gd::Error& e) {
    EXPECT(e.code() == GD_INVALID_OPTION);
    EXPECT(std::string(e.what()).find("given twice") != std::string::npos);
  }
  so.keys.clear();
  so.auth = gd::Auth::Required;
  try {
    gd::Server server(so);
    return false;
  } catch (const gd::Error& e) {
    EXPECT(e.code() == GD_INVALID_OPTION);
    EXPECT(std::string(e.what()).find("needs a keyring") != std::string::npos);
  }
  gd::Server keyless(server_options({}));
  try {
    keyless.set_keyring({K1});
    return false;
  } catch (const gd::Error& e) {
    EXPECT(e.code() == GD_INVALID_OPTION);
  }
  return true;
}

}  // namespace

int main() {
  run("key_id_and_wire_version", key_id_and_wire_version);
  run("a_keyed_client_joins_and_rotates", a_keyed_client_joins_and_rotates);
  run("permissive_takes_keyless_members", permissive_takes_keyless_members);
  run("a_refused_keyring_throws", a_refused_keyring_throws);
  return failures ? 1 : 0;
}
