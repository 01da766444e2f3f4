// gopherdiscovery for C++17: header-only RAII wrapper over the C ABI
// (gopherdiscovery.h). Link as for C: `pkg-config --cflags --libs gopherdiscovery`
// or CMake `find_package(gopherdiscovery)` + `gopherdiscovery::gopherdiscovery`.
//
//     gopherdiscovery::SubscriberOptions w;
//     w.on_peers = [](const std::vector<std::string>& peers) { pool.set(peers); };
//     gopherdiscovery::ClientOptions o{"http://10.0.0.1:8080"};
//     o.watch = w;
//     gopherdiscovery::Client member(o);   // leaves the mesh when destroyed
//
// Error strategy, used by every call: a failure throws gopherdiscovery::Error,
// which carries the C result code (code()) and the library's message (what()).
// Destructors never throw.
//
// Threads and lifetimes are those of the C API (see gopherdiscovery.h):
// - Callbacks (std::function) run on the subscriber's library thread, never two at
//   once for one object; the first peer-list call after on_peers() runs on the
//   calling thread. They may call any method of any object except closing or
//   destroying the object whose callback is running (close() then throws
//   Error with GD_INVALID_OPTION). An exception thrown by a callback cannot
//   reach you: it is caught, reported on stderr, and delivery goes on.
// - close() (and the destructor) waits for a callback in progress; after it
//   returns no callback runs. Objects may be used from several threads, but not
//   while another thread closes, destroys or moves them.
#ifndef GOPHERDISCOVERY_HPP
#define GOPHERDISCOVERY_HPP

#include <gopherdiscovery.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace gopherdiscovery {

/// A failed call: the C result code and the library's message.
class Error : public std::runtime_error {
 public:
  Error(gd_result code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  /// The C result code (GD_INVALID_URL, GD_ADDRESS_IN_USE, ...; never GD_OK).
  gd_result code() const noexcept { return code_; }

 private:
  gd_result code_;
};

using Metadata = std::map<std::string, std::string>;

enum class EventKind : int32_t {
  Joined = GD_EVENT_JOINED,
  Left = GD_EVENT_LEFT,
  Updated = GD_EVENT_UPDATED,
};

enum class Reason : int32_t {
  None = GD_REASON_NONE,
  Closed = GD_REASON_CLOSED,
  Timeout = GD_REASON_TIMEOUT,
  Restarted = GD_REASON_RESTARTED,
};

enum class State : int32_t {
  Syncing = GD_STATE_SYNCING,
  Live = GD_STATE_LIVE,
  Stale = GD_STATE_STALE,
};

/// One member event (a copy: it may be kept).
struct Event {
  EventKind kind;
  Reason reason;
  std::string name;
  Metadata metadata;
  std::uint64_t incarnation;
  std::uint64_t epoch;
  std::uint64_t seq;
  bool snapshot;
  /// +1 per metadata change of this incarnation (0 at its start).
  std::uint32_t generation;
  /// "joined", "left" or "updated".
  const char* kind_str() const noexcept { return gd_event_kind_str(static_cast<int32_t>(kind)); }
  /// "none", "closed", "timeout" or "restarted".
  const char* reason_str() const noexcept { return gd_reason_str(static_cast<int32_t>(reason)); }
};

/// What a handle does with signatures (gd_auth).
enum class Auth : int32_t {
  /// Required with a keyring (keys or keyring_file), off without.
  Default = GD_AUTH_DEFAULT,
  Off = GD_AUTH_OFF,
  /// Signs what it sends; accepts unsigned input and counts it (auth_unsigned_accepted).
  Permissive = GD_AUTH_PERMISSIVE,
  Required = GD_AUTH_REQUIRED,
};

/// One key of a keyring: 32 random bytes (`gopherdiscovery keygen` prints one in base64).
using Key = std::array<std::uint8_t, GD_KEY_LEN>;

using PeersCallback = std::function<void(const std::vector<std::string>& peers)>;
using EventCallback = std::function<void(const Event& event)>;

/// Settings of a Server; an empty URL means the default.
struct ServerOptions {
  std::string survey;
  std::string publish;
  std::string snapshot;
  std::optional<std::string> legacy_publish;
  // Unset: the library's default (gd_server_options_init), so this wrapper
  // carries no numbers of its own. An unset deadline is half the interval.
  std::optional<std::chrono::milliseconds> interval;
  std::optional<std::chrono::milliseconds> deadline;
  std::optional<std::uint32_t> evict_after;
  std::optional<std::uint32_t> max_members;
  /// The keyring, primary first (copied when the server starts); empty: none.
  std::vector<Key> keys;
  /// The keyring as a file instead (one base64 key per line); empty: none.
  std::string keyring_file;
  Auth auth = Auth::Default;
  /// Covered by every tag; empty: none.
  std::string mesh_label;
};

/// Settings of a Subscriber (or of a Client's watch); an empty URL means the default.
struct SubscriberOptions {
  std::string publish;
  std::string snapshot;
  /// The publisher is a legacy (Go) server: no snapshot socket.
  bool legacy = false;
  /// Several servers to merge, each a (publish, snapshot) URL pair; when not
  /// empty, leave publish, snapshot and legacy unset. See Subscriber::servers().
  std::vector<std::pair<std::string, std::string>> servers;
  // Unset: the library's default (gd_subscriber_options_init).
  std::optional<std::chrono::milliseconds> snapshot_timeout;
  std::optional<std::uint32_t> stale_after;
  /// Installed before the subscriber starts, so it sees the first view.
  PeersCallback on_peers;
  /// Installed before the subscriber starts, so it sees the first view's events.
  EventCallback on_event;
  /// Keyring, auth and mesh label as in ServerOptions. In a ClientOptions::watch,
  /// leaving all four unset takes the client's.
  std::vector<Key> keys;
  std::string keyring_file;
  Auth auth = Auth::Default;
  std::string mesh_label;
};

/// One configured server as a subscriber sees it (SubscriberRef::servers()).
struct ServerStatus {
  std::string publish;
  /// Empty for a legacy publisher.
  std::string snapshot;
  std::uint64_t epoch;
  std::uint64_t seq;
  State state;
  /// It may add members, not remove them.
  bool warming;
  std::size_t members;
  /// Unset: no publication yet.
  std::optional<std::chrono::milliseconds> last_publication_age;
  std::uint64_t resyncs;
};

/// Settings of a Client.
struct ClientOptions {
  /// The member's name, its service address (required).
  std::string name;
  /// Survey URLs to answer; empty: the default.
  std::vector<std::string> surveys;
  Metadata metadata;
  // Unset: the library's default (gd_client_options_init).
  std::optional<std::chrono::milliseconds> reconnect_max;
  /// Also watch the member set (the original's ClientWithSub).
  std::optional<SubscriberOptions> watch;
  /// Keyring, auth and mesh label as in ServerOptions.
  std::vector<Key> keys;
  std::string keyring_file;
  Auth auth = Auth::Default;
  std::string mesh_label;
};

namespace detail {

inline std::string last_error() {
  std::size_t n = gd_last_error_message(nullptr, 0);
  std::string s(n + 1, '\0');
  gd_last_error_message(&s[0], s.size());
  s.resize(n);
  return s;
}

inline void check(gd_result rc) {
  if (rc != GD_OK) throw Error(rc, last_error());
}

inline const char* c_str_or_null(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

inline std::uint32_t millis(std::chrono::milliseconds d) {
  return d.count() < 0 ? 0u : static_cast<std::uint32_t>(d.count());
}

inline void report(const char* what, const char* why) noexcept {
  std::fprintf(stderr, "gopherdiscovery: a %s callback threw: %s\n", what, why);
}

/// The std::functions of one subscriber, at a stable address (the C `user`).
/// A call copies the function under the lock and runs the copy without it, so
/// replacing a function while it runs is safe.
struct Callbacks {
  std::mutex mu;
  PeersCallback peers;
  EventCallback event;

  static void on_peers(void* user, const char* const* names, std::size_t count) noexcept {
    auto* self = static_cast<Callbacks*>(user);
    try {
      PeersCallback f;
      {
        std::lock_guard<std::mutex> g(self->mu);
        f = self->peers;
      }
      if (f) f(std::vector<std::string>(names, names + count));
    } catch (const std::exception& e) {
      report("peers", e.what());
    } catch (...) {
      report("peers", "an exception not derived from std::exception");
    }
  }

  static void on_event(void* user, const gd_event* e) noexcept {
    auto* self = static_cast<Callbacks*>(user);
    try {
      EventCallback f;
      {
        std::lock_guard<std::mutex> g(self->mu);
        f = self->event;
      }
      if (!f) return;
      Event ev{static_cast<EventKind>(e->kind), static_cast<Reason>(e->reason), e->name, {},
               e->incarnation, e->epoch, e->seq, e->snapshot, e->generation};
      for (std::size_t i = 0; i < e->metadata_count; ++i)
        ev.metadata[e->metadata[i].key] = e->metadata[i].value;
      f(ev);
    } catch (const std::exception& ex) {
      report("event", ex.what());
    } catch (...) {
      report("event", "an exception not derived from std::exception");
    }
  }
};

/// Pointers to `keys`, for the C `keys` arguments (no key bytes are copied).
inline std::vector<const std::uint8_t*> key_pointers(const std::vector<Key>& keys) {
  std::vector<const std::uint8_t*> v;
  v.reserve(keys.size());
  for (const auto& k : keys) v.push_back(k.data());
  return v;
}

/// Sets the keyring fields of a C options struct from C++ options; `ptrs` and `o`
/// must outlive the call that takes the options.
template <typename C, typename O>
inline void auth_options(C& c, const O& o, std::vector<const std::uint8_t*>& ptrs) {
  ptrs = key_pointers(o.keys);
  c.keys = ptrs.empty() ? nullptr : ptrs.data();
  c.keys_count = ptrs.size();
  c.keyring_file = c_str_or_null(o.keyring_file);
  c.auth = static_cast<int32_t>(o.auth);
  c.mesh_label = c_str_or_null(o.mesh_label);
}

/// The storage a C gd_subscriber_options points into, besides the C++ options.
struct SubscriberStorage {
  std::vector<gd_server_urls> urls;
  std::vector<const std::uint8_t*> keys;
};

/// C options from C++ ones; the strings stay owned by `o`, the server pairs and
/// key pointers by `st` (both must outlive the call that takes the options).
inline gd_subscriber_options subscriber_options(const SubscriberOptions& o, Callbacks* cbs,
                                                SubscriberStorage& st) {
  std::vector<gd_server_urls>& urls = st.urls;
  gd_subscriber_options c;
  check(gd_subscriber_options_init(&c));
  c.publish = c_str_or_null(o.publish);
  c.snapshot = c_str_or_null(o.snapshot);
  c.legacy = o.legacy ? 1 : 0;
  urls.clear();
  for (const auto& s : o.servers) urls.push_back(gd_server_urls{s.first.c_str(), s.second.c_str()});
  c.servers = urls.empty() ? nullptr : urls.data();
  c.servers_count = urls.size();
  if (o.snapshot_timeout) c.snapshot_timeout_ms = millis(*o.snapshot_timeout);
  if (o.stale_after) c.stale_after = *o.stale_after;
  c.on_peers = &Callbacks::on_peers;
  c.on_event = &Callbacks::on_event;
  c.user = cbs;
  auth_options(c, o, st.keys);
  cbs->peers = o.on_peers;
  cbs->event = o.on_event;
  return c;
}

/// C metadata entries pointing into `md`.
inline std::vector<gd_metadata_entry> entries(const Metadata& md) {
  std::vector<gd_metadata_entry> v;
  v.reserve(md.size());
  for (const auto& kv : md) v.push_back(gd_metadata_entry{kv.first.c_str(), kv.second.c_str()});
  return v;
}

}  // namespace detail

/// A subscriber's view and callbacks, without ownership: the base of Subscriber,
/// and what Client::subscriber() returns for a client that watches (valid while
/// the client lives).
class SubscriberRef {
 public:
  /// The current peer list, sorted (empty before the first view).
  std::vector<std::string> peers() const {
    gd_peer_list* list = nullptr;
    detail::check(gd_subscriber_peers(handle_, &list));
    std::unique_ptr<gd_peer_list, decltype(&gd_peer_list_free)> guard(list, &gd_peer_list_free);
    return std::vector<std::string>(list->names, list->names + list->count);
  }

  State state() const {
    gd_state s = GD_STATE_SYNCING;
    detail::check(gd_subscriber_state(handle_, &s));
    return static_cast<State>(s);
  }

  /// Every configured server's status, in configuration order.
  std::vector<ServerStatus> servers() const {
    gd_server_list* list = nullptr;
    detail::check(gd_subscriber_servers(handle_, &list));
    std::unique_ptr<gd_server_list, decltype(&gd_server_list_free)> guard(list, &gd_server_list_free);
    std::vector<ServerStatus> out;
    for (std::size_t i = 0; i < list->count; ++i) {
      const gd_server_status& s = list->servers[i];
      std::optional<std::chrono::milliseconds> age;
      if (s.last_publication_age_ms >= 0) age = std::chrono::milliseconds(s.last_publication_age_ms);
      out.push_back(ServerStatus{s.publish, s.snapshot ? std::string(s.snapshot) : std::string(), s.epoch, s.seq,
                                 static_cast<State>(s.state), s.warming != 0, s.members, age, s.resyncs});
    }
    return out;
  }

  /// (epoch, seq) of the view.
  std::pair<std::uint64_t, std::uint64_t> position() const {
    std::uint64_t epoch = 0, seq = 0;
    detail::check(gd_subscriber_position(handle_, &epoch, &seq));
    return {epoch, seq};
  }

  /// State, view, connections and counters now (the C struct, filled).
  gd_subscriber_statistics stats() const {
    gd_subscriber_statistics s{};
    s.struct_size = sizeof s;
    detail::check(gd_subscriber_stats(handle_, &s));
    return s;
  }

  /// Replaces the peer-list callback (empty: none). When there is a current
  /// list, `f` is called with it on this thread before this returns.
  void on_peers(PeersCallback f) {
    {
      std::lock_guard<std::mutex> g(callbacks_->mu);
      callbacks_->peers = std::move(f);
    }
    // Re-registering waits for a callback in progress and delivers the current list.
    detail::check(gd_on_peers(handle_, &detail::Callbacks::on_peers, callbacks_));
  }

  /// Replaces the keyring (primary first; copied): see gd_subscriber_set_keyring.
  void set_keyring(const std::vector<Key>& keys) {
    std::vector<const std::uint8_t*> p = detail::key_pointers(keys);
    detail::check(gd_subscriber_set_keyring(handle_, p.empty() ? nullptr : p.data(), p.size()));
  }

  /// Replaces the event callback (empty: none); it sees the changes after this call.
  void on_event(EventCallback f) {
    {
      std::lock_guard<std::mutex> g(callbacks_->mu);
      callbacks_->event = std::move(f);
    }
    detail::check(gd_on_event(handle_, &detail::Callbacks::on_event, callbacks_));
  }

  /// The C handle (borrowed).
  gd_subscriber* get() const noexcept { return handle_; }

 protected:
  SubscriberRef(gd_subscriber* h, detail::Callbacks* cbs) noexcept : handle_(h), callbacks_(cbs) {}
  gd_subscriber* handle_;
  detail::Callbacks* callbacks_;

  friend class Client;
};

/// A running subscriber; destroying it (or close()) stops it.
class Subscriber : public SubscriberRef {
 public:
  explicit Subscriber(const SubscriberOptions& o = {})
      : SubscriberRef(nullptr, nullptr), owned_(new detail::Callbacks) {
    callbacks_ = owned_.get();
    detail::SubscriberStorage st;
    gd_subscriber_options c = detail::subscriber_options(o, callbacks_, st);
    detail::check(gd_subscriber_open(&c, &handle_));
  }
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;
  Subscriber(Subscriber&& other) noexcept
      : SubscriberRef(std::exchange(other.handle_, nullptr), other.callbacks_),
        owned_(std::move(other.owned_)) {}
  Subscriber& operator=(Subscriber&& other) noexcept {
    if (this != &other) {
      destroy();
      handle_ = std::exchange(other.handle_, nullptr);
      callbacks_ = other.callbacks_;
      owned_ = std::move(other.owned_);
    }
    return *this;
  }
  ~Subscriber() { destroy(); }

  /// Stops the subscriber, waiting for a callback in progress. Idempotent.
  /// Throws Error(GD_INVALID_OPTION) when called from its own callback.
  void close() {
    if (!handle_) return;
    detail::check(gd_subscriber_close(handle_));
    handle_ = nullptr;
    owned_.reset();
  }

 private:
  void destroy() noexcept {
    if (!handle_) return;
    if (gd_subscriber_close(handle_) != GD_OK) {
      // Destroyed from its own callback: the handle stays open, so its callbacks
      // must stay valid. Leak both rather than crash.
      std::fprintf(stderr, "gopherdiscovery: ~Subscriber: %s\n", detail::last_error().c_str());
      (void)owned_.release();
    }
    handle_ = nullptr;
    owned_.reset();
  }
  std::unique_ptr<detail::Callbacks> owned_;
};

/// A running discovery server; destroying it (or close()) stops it.
class Server {
 public:
  explicit Server(const ServerOptions& o = {}) {
    gd_server_options c;
    detail::check(gd_server_options_init(&c));
    c.survey = detail::c_str_or_null(o.survey);
    c.publish = detail::c_str_or_null(o.publish);
    c.snapshot = detail::c_str_or_null(o.snapshot);
    c.legacy_publish = o.legacy_publish ? o.legacy_publish->c_str() : nullptr;
    if (o.interval) c.interval_ms = detail::millis(*o.interval);
    if (o.deadline) c.deadline_ms = detail::millis(*o.deadline);
    if (o.evict_after) c.evict_after = *o.evict_after;
    if (o.max_members) c.max_members = *o.max_members;
    std::vector<const std::uint8_t*> keys;
    detail::auth_options(c, o, keys);
    detail::check(gd_server_start(&c, &handle_));
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  Server(Server&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Server& operator=(Server&& other) noexcept {
    if (this != &other) {
      gd_server_close(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  ~Server() { gd_server_close(handle_); }

  /// The bound URLs (a tcp port 0 replaced by the real port).
  std::string survey_url() const { return url(GD_SOCKET_SURVEY); }
  std::string publish_url() const { return url(GD_SOCKET_PUBLISH); }
  std::string snapshot_url() const { return url(GD_SOCKET_SNAPSHOT); }

  /// What the server took, dropped and sent so far (the C struct, filled).
  gd_server_statistics stats() const {
    gd_server_statistics s{};
    s.struct_size = sizeof s;
    detail::check(gd_server_stats(handle_, &s));
    return s;
  }

  /// Replaces the keyring (primary first; copied): see gd_server_set_keyring.
  void set_keyring(const std::vector<Key>& keys) {
    std::vector<const std::uint8_t*> p = detail::key_pointers(keys);
    detail::check(gd_server_set_keyring(handle_, p.empty() ? nullptr : p.data(), p.size()));
  }

  /// The keyring, primary first, with the messages verified by each key (see
  /// gd_server_key_use); empty without a keyring.
  std::vector<std::pair<std::string, std::uint64_t>> key_use() const {
    std::size_t n = 0;
    detail::check(gd_server_key_use(handle_, nullptr, 0, &n));
    std::vector<gd_key_use> out(n);
    detail::check(gd_server_key_use(handle_, out.data(), out.size(), &n));
    std::vector<std::pair<std::string, std::uint64_t>> r;
    for (std::size_t i = 0; i < n && i < out.size(); ++i) r.emplace_back(out[i].key_id, out[i].verified);
    return r;
  }

  /// Stops the server. Idempotent.
  void close() {
    gd_result rc = gd_server_close(std::exchange(handle_, nullptr));
    detail::check(rc);
  }

  gd_server* get() const noexcept { return handle_; }

 private:
  std::string url(gd_socket which) const {
    const char* u = gd_server_url(handle_, which);
    if (!u) throw Error(GD_CLOSED, "the server is closed");
    return u;
  }
  gd_server* handle_ = nullptr;
};

/// A member of the mesh, perhaps watching it; destroying it (or close()) leaves.
class Client {
 public:
  explicit Client(const ClientOptions& o) {
    std::vector<const char*> surveys;
    for (const auto& s : o.surveys) surveys.push_back(s.c_str());
    std::vector<gd_metadata_entry> md = detail::entries(o.metadata);
    gd_client_options c;
    detail::check(gd_client_options_init(&c));
    c.name = o.name.c_str();
    c.surveys = surveys.empty() ? nullptr : surveys.data();
    c.survey_count = surveys.size();
    c.metadata = md.empty() ? nullptr : md.data();
    c.metadata_count = md.size();
    if (o.reconnect_max) c.reconnect_max_ms = detail::millis(*o.reconnect_max);
    std::vector<const std::uint8_t*> keys;
    detail::auth_options(c, o, keys);
    gd_subscriber_options w;
    detail::SubscriberStorage st;
    if (o.watch) {
      callbacks_.reset(new detail::Callbacks);
      w = detail::subscriber_options(*o.watch, callbacks_.get(), st);
      c.watch = &w;
    }
    detail::check(gd_client_join(&c, &handle_));
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&& other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)), callbacks_(std::move(other.callbacks_)) {}
  Client& operator=(Client&& other) noexcept {
    if (this != &other) {
      destroy();
      handle_ = std::exchange(other.handle_, nullptr);
      callbacks_ = std::move(other.callbacks_);
    }
    return *this;
  }
  ~Client() { destroy(); }

  /// Replaces the keyring (primary first; copied), and the subscriber's if it
  /// took the client's: see gd_client_set_keyring.
  void set_keyring(const std::vector<Key>& keys) {
    std::vector<const std::uint8_t*> p = detail::key_pointers(keys);
    detail::check(gd_client_set_keyring(handle_, p.empty() ? nullptr : p.data(), p.size()));
  }

  /// Replaces the metadata; the server publishes `updated` at once.
  void set_metadata(const Metadata& md) {
    std::vector<gd_metadata_entry> e = detail::entries(md);
    detail::check(gd_client_set_metadata(handle_, e.empty() ? nullptr : e.data(), e.size()));
  }

  /// One survey URL's part of ClientStats; `url` is a copy.
  struct SurveyUrlStats {
    std::string url;
    bool connected;
    std::uint64_t surveys_answered;
    std::uint64_t announces_sent;
    std::int64_t last_survey_age_ms;  ///< -1: never surveyed
  };

  /// What the client did so far, in all and per survey URL (same names as C).
  struct Stats {
    std::uint64_t connections;
    std::uint64_t surveys_answered;
    std::uint64_t announces_sent;
    std::int64_t last_survey_age_ms;  ///< -1: never surveyed
    std::vector<SurveyUrlStats> survey_urls;
    /// Surveys dropped by authentication, by reason, and unsigned ones answered
    /// under Auth::Permissive (the gd_client_statistics fields).
    std::uint64_t auth_bad_mac, auth_unknown_key, auth_unsigned, auth_replayed, auth_stale_survey,
        auth_wrong_connection, auth_unsigned_accepted;
  };

  Stats stats() const {
    gd_client_statistics c{};
    c.struct_size = sizeof c;
    detail::check(gd_client_stats(handle_, &c));
    Stats s{c.connections,       c.surveys_answered,      c.announces_sent, c.last_survey_age_ms, {},
            c.auth_bad_mac,      c.auth_unknown_key,      c.auth_unsigned,  c.auth_replayed,
            c.auth_stale_survey, c.auth_wrong_connection, c.auth_unsigned_accepted};
    for (std::size_t i = 0; i < c.survey_url_count; i++) {
      gd_survey_url_statistics u{};
      u.struct_size = sizeof u;
      detail::check(gd_client_survey_url_stats(handle_, i, &u));
      s.survey_urls.push_back({u.url, u.connected, u.surveys_answered, u.announces_sent,
                               u.last_survey_age_ms});
    }
    return s;
  }

  /// True when built with ClientOptions::watch.
  bool watching() const noexcept { return gd_client_subscriber(handle_) != nullptr; }

  /// The client's subscriber (valid while the client lives); throws
  /// Error(GD_INVALID_OPTION) when the client does not watch.
  SubscriberRef subscriber() const {
    gd_subscriber* s = gd_client_subscriber(handle_);
    if (!s) throw Error(GD_INVALID_OPTION, "this client does not watch (ClientOptions::watch)");
    return SubscriberRef(s, callbacks_.get());
  }

  /// Leaves the mesh, waiting for a callback in progress. Idempotent. Throws
  /// Error(GD_INVALID_OPTION) when called from its own subscriber's callback.
  void close() {
    if (!handle_) return;
    detail::check(gd_client_close(handle_));
    handle_ = nullptr;
    callbacks_.reset();
  }

  gd_client* get() const noexcept { return handle_; }

 private:
  void destroy() noexcept {
    if (!handle_) return;
    if (gd_client_close(handle_) != GD_OK) {
      std::fprintf(stderr, "gopherdiscovery: ~Client: %s\n", detail::last_error().c_str());
      (void)callbacks_.release();
    }
    handle_ = nullptr;
    callbacks_.reset();
  }
  gd_client* handle_ = nullptr;
  std::unique_ptr<detail::Callbacks> callbacks_;
};

/// The library's version, e.g. "0.2.0".
inline std::string version() { return gd_version(); }

/// The version of the NNG library built in, e.g. "1.11.0".
inline std::string nng_version() { return gd_nng_version(); }

/// The native wire protocol's version byte, e.g. 3.
inline int wire_version() { return gd_wire_version(); }

/// The id of a key: 8 lowercase hex digits (names it without revealing it).
inline std::string key_id(const Key& key) {
  char id[GD_KEY_ID_LEN];
  detail::check(gd_key_id(key.data(), id));
  return id;
}

}  // namespace gopherdiscovery

#endif  // GOPHERDISCOVERY_HPP
