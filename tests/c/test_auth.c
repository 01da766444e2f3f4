/*
 * Authenticated meshes through the C ABI (docs/PROTOCOL.md, "Authentication"):
 * keys in every options struct (copied during the call), gd_auth modes, the
 * keyring file, gd_*_set_keyring rotation, gd_key_id, the auth_* statistics,
 * and callers compiled against the header from before authentication.
 * Run under valgrind by tests/c/run.sh: the key buffers are freed right after
 * each call that takes them, so a library that kept a pointer would be caught.
 */
#include "common.h"

#include <stddef.h>
#include <stdint.h>

/* Three keys: K1 is the bytes 0, 1, ..., 31 (id "03defadb", the documented
 * example), K2 and K3 are constant bytes. */
static uint8_t K1[GD_KEY_LEN], K2[GD_KEY_LEN], K3[GD_KEY_LEN];
static const char K1_BASE64[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

static void keys_setup(void) {
    for (int i = 0; i < GD_KEY_LEN; i++) {
        K1[i] = (uint8_t)i;
        K2[i] = 0x42;
        K3[i] = 0x77;
    }
}

/* A keyring in heap memory of its own (the array and every key), as a caller
 * that frees it right after the call would hold it. */
struct heap_keys {
    const uint8_t **keys;
    size_t count;
};

static struct heap_keys heap_keys(size_t count, ...) {
    struct heap_keys h;
    va_list ap;
    h.count = count;
    h.keys = malloc(count * sizeof *h.keys);
    va_start(ap, count);
    for (size_t i = 0; i < count; i++) {
        uint8_t *k = malloc(GD_KEY_LEN);
        memcpy(k, va_arg(ap, const uint8_t *), GD_KEY_LEN);
        h.keys[i] = k;
    }
    va_end(ap);
    return h;
}

/* Clears and frees the keys: the library must hold copies by now. */
static void heap_keys_free(struct heap_keys *h) {
    for (size_t i = 0; i < h->count; i++) {
        memset((void *)h->keys[i], 0, GD_KEY_LEN);
        free((void *)h->keys[i]);
    }
    free(h->keys);
    h->keys = NULL;
    h->count = 0;
}

/* A call that must fail with `want` and a message containing `text`. */
#define CHECK_ERR(call, want, text)                                                          \
    do {                                                                                     \
        char e_[512];                                                                        \
        CHECK_RC(call, want);                                                                \
        gd_last_error_message(e_, sizeof e_);                                                \
        if (strstr(e_, (text)) == NULL) {                                                    \
            fprintf(stderr, "  %s:%d: message [%s] lacks [%s]\n", __FILE__, __LINE__, e_, (text)); \
            g_failed_checks++;                                                               \
            return;                                                                          \
        }                                                                                    \
    } while (0)

/* A server on fresh URLs with `keys` (copied during the call) and `auth`. */
static gd_result keyed_mesh(struct mesh *m, const uint8_t *const *keys, size_t n, int auth) {
    gd_server_options o;
    mesh_options(m, &o);
    o.keys = keys;
    o.keys_count = n;
    o.auth = auth;
    return gd_server_start(&o, &m->server);
}

/* A member of `m` with `keys` (none when n is 0), perhaps watching. */
static gd_result keyed_join(const struct mesh *m, const char *name, const uint8_t *const *keys, size_t n,
                            const gd_subscriber_options *watch, gd_client **out) {
    const char *surveys[1];
    gd_client_options o;
    surveys[0] = m->survey;
    gd_client_options_init(&o);
    o.name = name;
    o.surveys = surveys;
    o.survey_count = 1;
    o.watch = watch;
    o.keys = keys;
    o.keys_count = n;
    return gd_client_join(&o, out);
}

/* A subscriber of `m` with `keys` whose callbacks write to `r`. */
static gd_result keyed_sub(const struct mesh *m, const uint8_t *const *keys, size_t n, struct recorder *r,
                           gd_subscriber **out) {
    gd_subscriber_options o;
    sub_options(&o, m);
    o.keys = keys;
    o.keys_count = n;
    o.on_peers = rec_peers;
    o.on_event = rec_event;
    o.user = r;
    return gd_subscriber_open(&o, out);
}

/* ------------------------------------------------------------ statistics */

enum kind { SERVER, CLIENT, SUBSCRIBER };

/* One uint64_t field (at `offset`) of a handle's statistics; UINT64_MAX when the
 * call fails. */
static uint64_t stat_of(enum kind k, const void *h, size_t offset) {
    union {
        gd_server_statistics server;
        gd_client_statistics client;
        gd_subscriber_statistics sub;
    } u;
    gd_result rc;
    uint64_t v;
    memset(&u, 0, sizeof u);
    switch (k) {
    case SERVER:
        u.server.struct_size = sizeof u.server;
        rc = gd_server_stats(h, &u.server);
        break;
    case CLIENT:
        u.client.struct_size = sizeof u.client;
        rc = gd_client_stats(h, &u.client);
        break;
    default:
        u.sub.struct_size = sizeof u.sub;
        rc = gd_subscriber_stats(h, &u.sub);
        break;
    }
    if (rc != GD_OK) return UINT64_MAX;
    memcpy(&v, (const char *)&u + offset, sizeof v);
    return v;
}

/* Waits (up to DEADLINE_MS) until the field reaches `want`. */
static int stat_reaches(enum kind k, const void *h, size_t offset, const char *what, uint64_t want) {
    long long end = now_ms() + DEADLINE_MS;
    uint64_t v;
    while ((v = stat_of(k, h, offset)) < want || v == UINT64_MAX) {
        if (now_ms() > end) {
            fprintf(stderr, "  timed out waiting for %s >= %llu (is %llu)\n", what, (unsigned long long)want,
                    (unsigned long long)v);
            return 0;
        }
        pause_ms(10);
    }
    return 1;
}

#define STAT(k, h, type, field) stat_of((k), (h), offsetof(type, field))
#define SERVER_STAT(s, field) STAT(SERVER, (s), gd_server_statistics, field)
#define CLIENT_STAT(c, field) STAT(CLIENT, (c), gd_client_statistics, field)
#define SUB_STAT(b, field) STAT(SUBSCRIBER, (b), gd_subscriber_statistics, field)
#define WAIT_STAT(k, h, type, field, want) \
    CHECK(stat_reaches((k), (h), offsetof(type, field), #h "." #field, (want)))
#define WAIT_SERVER(s, field, want) WAIT_STAT(SERVER, (s), gd_server_statistics, field, (want))
#define WAIT_CLIENT(c, field, want) WAIT_STAT(CLIENT, (c), gd_client_statistics, field, (want))
#define WAIT_SUB(b, field, want) WAIT_STAT(SUBSCRIBER, (b), gd_subscriber_statistics, field, (want))

static int rec_events(struct recorder *r) {
    pthread_mutex_lock(&r->mu);
    int n = r->event_calls;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* ------------------------------------------------------------ tests */

static void key_id_names_a_key(void) {
    char id[GD_KEY_ID_LEN];
    char id2[GD_KEY_ID_LEN];
    memset(id, 'x', sizeof id);
    CHECK_RC(gd_key_id(K1, id), GD_OK);
    CHECK(strcmp(id, "03defadb") == 0);
    CHECK_RC(gd_key_id(K2, id2), GD_OK);
    CHECK(strlen(id2) == 8 && strcmp(id, id2) != 0);
    CHECK_ERR(gd_key_id(NULL, id), GD_INVALID_OPTION, "NULL");
    CHECK_ERR(gd_key_id(K1, NULL), GD_INVALID_OPTION, "NULL");
    CHECK(gd_wire_version() == 3);
}

/* A server whose keyring comes from a file, two members and a subscriber whose
 * keys are freed right after the call that takes them: one mesh. */
static void members_with_the_key_join(void) {
    struct mesh m;
    struct recorder r;
    gd_server_options so;
    gd_subscriber *sub;
    gd_client *a, *b;
    char path[320];
    FILE *f;

    rec_init(&r);
    snprintf(path, sizeof path, "%s/keyring", g_dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f, "# the cluster key\n%s\n", K1_BASE64);
    fclose(f);
    mesh_options(&m, &so);
    so.keyring_file = path;
    so.mesh_label = "c-tests";
    CHECK_RC(gd_server_start(&so, &m.server), GD_OK);

    struct heap_keys k = heap_keys(1, K1);
    gd_subscriber_options wo;
    sub_options(&wo, &m);
    wo.keys = k.keys;
    wo.keys_count = k.count;
    wo.mesh_label = "c-tests";
    wo.on_peers = rec_peers;
    wo.on_event = rec_event;
    wo.user = &r;
    CHECK_RC(gd_subscriber_open(&wo, &sub), GD_OK);
    heap_keys_free(&k);

    const char *surveys[1] = {m.survey};
    gd_client_options co;
    gd_client_options_init(&co);
    co.surveys = surveys;
    co.survey_count = 1;
    co.mesh_label = "c-tests";
    co.name = "keyed-a";
    k = heap_keys(1, K1);
    co.keys = k.keys;
    co.keys_count = k.count;
    CHECK_RC(gd_client_join(&co, &a), GD_OK);
    heap_keys_free(&k);
    co.name = "keyed-b";
    k = heap_keys(1, K1);
    co.keys = k.keys;
    co.keys_count = k.count;
    CHECK_RC(gd_client_join(&co, &b), GD_OK);
    heap_keys_free(&k);

    WAIT_PEERS(&r, "keyed-a,keyed-b");
    WAIT_EVENT(&r, "joined keyed-a none\n");
    /* They answer surveys too, not only announce. */
    WAIT_CLIENT(a, surveys_answered, 1);
    WAIT_CLIENT(b, surveys_answered, 1);
    WAIT_SERVER(m.server, challenges, 2);
    CHECK(SERVER_STAT(m.server, auth_bad_mac) == 0 && SERVER_STAT(m.server, auth_unknown_key) == 0);
    CHECK(SERVER_STAT(m.server, auth_unsigned) == 0 && SUB_STAT(sub, auth_bad_mac) == 0);
    CHECK(CLIENT_STAT(a, auth_unknown_key) == 0 && CLIENT_STAT(a, auth_bad_mac) == 0);

    CHECK_RC(gd_client_close(a), GD_OK);
    WAIT_EVENT(&r, "left keyed-a closed\n");
    CHECK_RC(gd_client_close(b), GD_OK);
    CHECK_RC(gd_subscriber_close(sub), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&r);
}

/* A member with a wrong key and one with none never appear; each refusal is
 * counted where it happens. */
static void wrong_key_and_no_key_never_appear(void) {
    struct mesh m;
    struct recorder r;
    gd_subscriber *sub;
    gd_client *good, *wrong, *none;
    const uint8_t *k1[1] = {K1}, *k2[1] = {K2};

    rec_init(&r);
    CHECK_RC(keyed_mesh(&m, k1, 1, GD_AUTH_DEFAULT), GD_OK);
    CHECK_RC(keyed_sub(&m, k1, 1, &r, &sub), GD_OK);
    CHECK_RC(keyed_join(&m, "good", k1, 1, NULL, &good), GD_OK);
    CHECK_RC(keyed_join(&m, "wrong-key", k2, 1, NULL, &wrong), GD_OK);
    CHECK_RC(keyed_join(&m, "no-key", NULL, 0, NULL, &none), GD_OK);
    WAIT_PEERS(&r, "good");
    /* The server refuses the wrong key's answers and the keyless member's; the
     * wrong-key member refuses the server's surveys. */
    WAIT_SERVER(m.server, auth_unknown_key, 1);
    WAIT_SERVER(m.server, auth_unsigned, 1);
    WAIT_CLIENT(wrong, auth_unknown_key, 1);
    CHECK(CLIENT_STAT(wrong, surveys_answered) == 0);
    /* The keyless member (auth off) answers surveys, unsigned: refused too. */
    WAIT_CLIENT(none, surveys_answered, 1);
    uint64_t unsigned_before = SERVER_STAT(m.server, auth_unsigned);
    /* Two more rounds: still only the good member. */
    uint64_t rounds = SERVER_STAT(m.server, rounds);
    WAIT_SERVER(m.server, rounds, rounds + 2);
    WAIT_SERVER(m.server, auth_unsigned, unsigned_before + 1);
    CHECK(rec_wait(&r, saw_peers, "good"));
    pthread_mutex_lock(&r.mu);
    int leaked = strstr(r.events, "wrong-key") != NULL || strstr(r.events, "no-key") != NULL;
    pthread_mutex_unlock(&r.mu);
    CHECK(!leaked);
    CHECK(rec_events(&r) == 1);
    CHECK(SERVER_STAT(m.server, auth_bad_mac) == 0);

    CHECK_RC(gd_client_close(none), GD_OK);
    CHECK_RC(gd_client_close(wrong), GD_OK);
    CHECK_RC(gd_client_close(good), GD_OK);
    CHECK_RC(gd_subscriber_close(sub), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&r);
}

/* GD_AUTH_PERMISSIVE: a keyless member is taken, and counted. */
static void permissive_server_takes_keyless_members(void) {
    struct mesh m;
    struct recorder r;
    gd_subscriber *sub;
    gd_client *keyed, *keyless;
    const uint8_t *k1[1] = {K1};

    rec_init(&r);
    CHECK_RC(keyed_mesh(&m, k1, 1, GD_AUTH_PERMISSIVE), GD_OK);
    CHECK_RC(keyed_sub(&m, k1, 1, &r, &sub), GD_OK);
    CHECK_RC(keyed_join(&m, "keyless", NULL, 0, NULL, &keyless), GD_OK);
    CHECK_RC(keyed_join(&m, "keyed", k1, 1, NULL, &keyed), GD_OK);
    WAIT_PEERS(&r, "keyed,keyless");
    WAIT_SERVER(m.server, auth_unsigned_accepted, 1);
    CHECK(SERVER_STAT(m.server, auth_unsigned) == 0);
    CHECK_RC(gd_client_close(keyless), GD_OK);
    WAIT_PEERS(&r, "keyed");
    CHECK_RC(gd_client_close(keyed), GD_OK);
    CHECK_RC(gd_subscriber_close(sub), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&r);
}

static void invalid_keyrings_are_refused(void) {
    struct mesh m;
    gd_server_options so;
    gd_client_options co;
    gd_subscriber_options wo;
    gd_server *s = NULL;
    gd_client *c = NULL;
    gd_subscriber *sub = NULL;
    const uint8_t *with_null[2] = {K1, NULL};
    const uint8_t *dup[2] = {K1, K1};
    const uint8_t *many[65];
    const uint8_t *k1[1] = {K1};
    char path[320], label[300];
    FILE *f;

    for (int i = 0; i < 65; i++) many[i] = K1;
    mesh_options(&m, &so);
    so.keys = with_null;
    so.keys_count = 2;
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "keys[1] is NULL");
    so.keys = many;
    so.keys_count = 65;
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "keys_count is 65, more than 64");
    so.keys = dup;
    so.keys_count = 2;
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "given twice");
    so.keys = NULL; /* with a count */
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "keys is NULL");
    so.keys = k1;
    so.keys_count = 1;
    so.auth = 9;
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "auth is 9");
    so.auth = -1;
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "auth is -1");
    so.auth = GD_AUTH_DEFAULT;
    so.keyring_file = "/nonexistent/keyring";
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "keys and keyring_file exclude each other");
    so.keys = NULL;
    so.keys_count = 0;
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "keyring_file");
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "cannot read /nonexistent/keyring");
    snprintf(path, sizeof path, "%s/bad-keyring", g_dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f, "%s\nnot base64!\n", K1_BASE64);
    fclose(f);
    so.keyring_file = path;
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "line 2: not a base64 key");
    so.keyring_file = NULL;
    so.auth = GD_AUTH_REQUIRED;
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "invalid option auth: required needs a keyring");
    so.auth = GD_AUTH_PERMISSIVE;
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "permissive needs a keyring");
    so.auth = GD_AUTH_DEFAULT;
    memset(label, 'l', sizeof label - 1);
    label[sizeof label - 1] = '\0';
    so.mesh_label = label;
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "mesh_label");
    so.mesh_label = "a\nb";
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "mesh_label: has a control character");
    so.mesh_label = NULL;
    so.keys = k1;
    so.keys_count = 1;
    so.legacy_publish = "ipc:///nonexistent/gd-legacy";
    CHECK_ERR(gd_server_start(&so, &s), GD_INVALID_OPTION, "legacy_publish");
    CHECK(s == NULL);

    /* The same checks on a client and a subscriber, a client's watch included. */
    CHECK_RC(keyed_mesh(&m, k1, 1, GD_AUTH_DEFAULT), GD_OK);
    gd_client_options_init(&co);
    co.name = "bad-keys";
    co.keys = dup;
    co.keys_count = 2;
    CHECK_ERR(gd_client_join(&co, &c), GD_INVALID_OPTION, "given twice");
    co.keys = k1;
    co.keys_count = 1;
    co.auth = 9;
    CHECK_ERR(gd_client_join(&co, &c), GD_INVALID_OPTION, "auth is 9");
    co.auth = GD_AUTH_DEFAULT;
    sub_options(&wo, &m);
    wo.auth = GD_AUTH_REQUIRED; /* its own settings: no keyring */
    co.watch = &wo;
    CHECK_ERR(gd_client_join(&co, &c), GD_INVALID_OPTION, "required needs a keyring");
    CHECK(c == NULL);
    sub_options(&wo, &m);
    wo.keys = with_null;
    wo.keys_count = 2;
    CHECK_ERR(gd_subscriber_open(&wo, &sub), GD_INVALID_OPTION, "keys[1] is NULL");
    wo.keys = k1;
    wo.keys_count = 1;
    wo.keyring_file = path;
    CHECK_ERR(gd_subscriber_open(&wo, &sub), GD_INVALID_OPTION, "exclude each other");
    CHECK(sub == NULL);

    /* Reloads: the same checks, and none for a handle started without a keyring. */
    CHECK_RC(keyed_join(&m, "keyless-member", NULL, 0, NULL, &c), GD_OK);
    CHECK_ERR(gd_client_set_keyring(c, k1, 1), GD_INVALID_OPTION, "started without a keyring");
    CHECK_RC(gd_client_close(c), GD_OK);
    CHECK_ERR(gd_server_set_keyring(m.server, NULL, 0), GD_INVALID_OPTION, "no key");
    CHECK_ERR(gd_server_set_keyring(m.server, with_null, 2), GD_INVALID_OPTION, "keys[1] is NULL");
    CHECK_ERR(gd_server_set_keyring(m.server, many, 65), GD_INVALID_OPTION, "more than 64");
    CHECK_ERR(gd_server_set_keyring(m.server, dup, 2), GD_INVALID_OPTION, "given twice");
    CHECK_ERR(gd_server_set_keyring(NULL, k1, 1), GD_INVALID_OPTION, "server is NULL");
    CHECK_ERR(gd_subscriber_set_keyring(NULL, k1, 1), GD_INVALID_OPTION, "subscriber is NULL");
    CHECK_ERR(gd_client_set_keyring(NULL, k1, 1), GD_INVALID_OPTION, "client is NULL");
    CHECK_RC(gd_server_close(m.server), GD_OK);
}

/* A watching client's subscriber takes the client's keyring unless its options
 * set their own. */
static void watching_client_inherits_unless_told(void) {
    struct mesh m;
    struct recorder r;
    gd_subscriber_options wo;
    gd_client *c, *d;
    gd_state st = GD_STATE_LIVE;
    const uint8_t *k1[1] = {K1};

    rec_init(&r);
    CHECK_RC(keyed_mesh(&m, k1, 1, GD_AUTH_DEFAULT), GD_OK);
    sub_options(&wo, &m);
    wo.on_peers = rec_peers;
    wo.user = &r;
    CHECK_RC(keyed_join(&m, "inherits", k1, 1, &wo, &c), GD_OK);
    WAIT_PEERS(&r, "inherits");
    CHECK(SUB_STAT(gd_client_subscriber(c), auth_replayed) == 0);

    /* Its own auth (off): its snapshot requests go unsigned and are refused. */
    uint64_t refused = SERVER_STAT(m.server, auth_unsigned);
    sub_options(&wo, &m);
    wo.auth = GD_AUTH_OFF;
    CHECK_RC(keyed_join(&m, "own-settings", k1, 1, &wo, &d), GD_OK);
    WAIT_SERVER(m.server, auth_unsigned, refused + 1);
    CHECK_RC(gd_subscriber_state(gd_client_subscriber(d), &st), GD_OK);
    CHECK(st == GD_STATE_SYNCING);
    WAIT_PEERS(&r, "inherits,own-settings"); /* the member itself is signed */
    CHECK_RC(gd_client_close(d), GD_OK);
    CHECK_RC(gd_client_close(c), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&r);
}

/* Waits until every handle has moved on under the keys in force: the client
 * answers, the server takes answers, both subscribers take publications. */
static int progress(gd_server *s, gd_client *c, gd_subscriber *a, gd_subscriber *b) {
    uint64_t answered = CLIENT_STAT(c, surveys_answered), taken = SERVER_STAT(s, answers);
    uint64_t pa = SUB_STAT(a, publications), pb = SUB_STAT(b, publications);
    return stat_reaches(CLIENT, c, offsetof(gd_client_statistics, surveys_answered), "client answers", answered + 2) &&
           stat_reaches(SERVER, s, offsetof(gd_server_statistics, answers), "server answers", taken + 2) &&
           stat_reaches(SUBSCRIBER, a, offsetof(gd_subscriber_statistics, publications), "publications", pa + 2) &&
           stat_reaches(SUBSCRIBER, b, offsetof(gd_subscriber_statistics, publications), "publications", pb + 2);
}

/* One rotation step on the server, the (watching) client and the subscriber,
 * with key buffers freed right after each call. */
static int rotate(gd_server *s, gd_client *c, gd_subscriber *sub, const uint8_t *first, const uint8_t *second) {
    struct heap_keys k = second ? heap_keys(2, first, second) : heap_keys(1, first);
    int ok = gd_server_set_keyring(s, k.keys, k.count) == GD_OK;
    heap_keys_free(&k);
    k = second ? heap_keys(2, first, second) : heap_keys(1, first);
    ok = ok && gd_client_set_keyring(c, k.keys, k.count) == GD_OK;
    heap_keys_free(&k);
    k = second ? heap_keys(2, first, second) : heap_keys(1, first);
    ok = ok && gd_subscriber_set_keyring(sub, k.keys, k.count) == GD_OK;
    heap_keys_free(&k);
    if (!ok) {
        char m[512];
        gd_last_error_message(m, sizeof m);
        fprintf(stderr, "  set_keyring failed: %s\n", m);
    }
    return ok;
}

/* Key rotation in three steps ([K1] -> [K1,K2] -> [K2,K1] -> [K2]) on a live
 * mesh: no membership event, no bad_mac, and the old key is refused after. */
static void rotation_moves_nothing(void) {
    struct mesh m;
    struct recorder r, w;
    gd_subscriber_options wo;
    gd_subscriber *sub;
    gd_client *c, *old;
    const uint8_t *k1[1] = {K1};

    rec_init(&r);
    rec_init(&w);
    CHECK_RC(keyed_mesh(&m, k1, 1, GD_AUTH_DEFAULT), GD_OK);
    CHECK_RC(keyed_sub(&m, k1, 1, &r, &sub), GD_OK);
    sub_options(&wo, &m); /* takes the client's keyring, and its reloads */
    wo.on_peers = rec_peers;
    wo.on_event = rec_event;
    wo.user = &w;
    CHECK_RC(keyed_join(&m, "rotating", k1, 1, &wo, &c), GD_OK);
    gd_subscriber *mine = gd_client_subscriber(c);
    WAIT_PEERS(&r, "rotating");
    WAIT_PEERS(&w, "rotating");
    CHECK(progress(m.server, c, sub, mine));
    CHECK(rec_events(&r) == 1 && rec_events(&w) == 1);

    CHECK(rotate(m.server, c, sub, K1, K2));
    CHECK(progress(m.server, c, sub, mine));
    CHECK(rotate(m.server, c, sub, K2, K1));
    CHECK(progress(m.server, c, sub, mine));
    /* Step 3's evidence: the server's keyring, primary first, with the messages
     * verified by each key; a too small array still gets the count. */
    char id1[GD_KEY_ID_LEN], id2[GD_KEY_ID_LEN];
    CHECK_RC(gd_key_id(K1, id1), GD_OK);
    CHECK_RC(gd_key_id(K2, id2), GD_OK);
    gd_key_use use[2];
    size_t n = 0;
    CHECK_RC(gd_server_key_use(m.server, use, 1, &n), GD_OK);
    CHECK(n == 2 && strcmp(use[0].key_id, id2) == 0);
    CHECK_RC(gd_server_key_use(m.server, use, 2, &n), GD_OK);
    CHECK(n == 2 && strcmp(use[0].key_id, id2) == 0 && strcmp(use[1].key_id, id1) == 0);
    CHECK(use[0].verified > 0 && use[1].verified > 0);
    CHECK_RC(gd_server_key_use(m.server, NULL, 0, &n), GD_OK);
    CHECK(n == 2);
    CHECK_RC(gd_server_key_use(m.server, NULL, 1, &n), GD_INVALID_OPTION);
    CHECK(rotate(m.server, c, sub, K2, NULL));
    CHECK(progress(m.server, c, sub, mine));
    CHECK_RC(gd_server_key_use(m.server, use, 2, &n), GD_OK);
    CHECK(n == 1 && strcmp(use[0].key_id, id2) == 0 && use[0].verified > 0);

    CHECK(rec_events(&r) == 1 && rec_events(&w) == 1);
    CHECK(rec_wait(&r, saw_peers, "rotating"));
    CHECK(SERVER_STAT(m.server, auth_bad_mac) == 0 && CLIENT_STAT(c, auth_bad_mac) == 0);
    CHECK(SUB_STAT(sub, auth_bad_mac) == 0 && SUB_STAT(mine, auth_bad_mac) == 0);
    CHECK(SERVER_STAT(m.server, left_timeout) == 0 && SERVER_STAT(m.server, left_closed) == 0);

    /* The old key is gone: a member that still has only K1 is refused. */
    uint64_t unknown = SERVER_STAT(m.server, auth_unknown_key);
    CHECK_RC(keyed_join(&m, "old-key", k1, 1, NULL, &old), GD_OK);
    WAIT_SERVER(m.server, auth_unknown_key, unknown + 1);
    WAIT_CLIENT(old, auth_unknown_key, 1);
    CHECK(rec_events(&r) == 1);
    CHECK_RC(gd_client_close(old), GD_OK);

    CHECK_RC(gd_client_close(c), GD_OK);
    WAIT_EVENT(&r, "left rotating closed\n");
    CHECK_RC(gd_subscriber_close(sub), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&w);
    rec_destroy(&r);
}

/* A caller compiled against the header from before authentication: its
 * options and statistics structs end before the keyring fields. Each options
 * struct lives in a heap block of exactly its old size, so a library that read
 * past it would be caught by valgrind. */
static void callers_from_before_authentication(void) {
    struct mesh m;
    struct recorder r;
    gd_server_options so;
    gd_client_options co;
    gd_subscriber_options wo;
    gd_client *c;
    const size_t old_server = offsetof(gd_server_options, keys);
    const size_t old_client = offsetof(gd_client_options, keys);
    const size_t old_sub = offsetof(gd_subscriber_options, keys);
    const char *surveys[1];

    rec_init(&r);
    mesh_options(&m, &so);
    so.struct_size = old_server;
    gd_server_options *old_so = malloc(old_server);
    memcpy(old_so, &so, old_server);
    CHECK_RC(gd_server_start(old_so, &m.server), GD_OK);
    free(old_so);

    sub_options(&wo, &m);
    wo.on_peers = rec_peers;
    wo.user = &r;
    wo.struct_size = old_sub;
    gd_subscriber_options *old_wo = malloc(old_sub);
    memcpy(old_wo, &wo, old_sub);
    surveys[0] = m.survey;
    gd_client_options_init(&co);
    co.struct_size = old_client;
    co.name = "old-caller";
    co.surveys = surveys;
    co.survey_count = 1;
    co.watch = old_wo;
    gd_client_options *old_co = malloc(old_client);
    memcpy(old_co, &co, old_client);
    CHECK_RC(gd_client_join(old_co, &c), GD_OK);
    free(old_co);
    free(old_wo);
    WAIT_PEERS(&r, "old-caller");

    /* A struct_size between two published sizes is refused. */
    so.struct_size = old_server + 8;
    CHECK_ERR(gd_server_start(&so, &m.server), GD_INVALID_OPTION, "struct_size");

    /* Statistics: only the fields the old struct knew are written. */
    gd_server_statistics ss;
    gd_client_statistics cs;
    gd_subscriber_statistics bs;
    memset(&ss, 0xAB, sizeof ss);
    ss.struct_size = offsetof(gd_server_statistics, challenges);
    CHECK_RC(gd_server_stats(m.server, &ss), GD_OK);
    CHECK(ss.struct_size == offsetof(gd_server_statistics, challenges));
    CHECK(ss.joined == 1 && ss.challenges == 0xABABABABABABABABull);
    CHECK(ss.auth_unsigned_accepted == 0xABABABABABABABABull);
    memset(&cs, 0xAB, sizeof cs);
    cs.struct_size = offsetof(gd_client_statistics, auth_bad_mac);
    CHECK_RC(gd_client_stats(c, &cs), GD_OK);
    CHECK(cs.struct_size == offsetof(gd_client_statistics, auth_bad_mac));
    CHECK(cs.survey_url_count == 1 && cs.auth_bad_mac == 0xABABABABABABABABull);
    memset(&bs, 0xAB, sizeof bs);
    bs.struct_size = offsetof(gd_subscriber_statistics, auth_bad_mac);
    CHECK_RC(gd_subscriber_stats(gd_client_subscriber(c), &bs), GD_OK);
    CHECK(bs.members == 1 && bs.auth_bad_mac == 0xABABABABABABABABull);
    /* The whole struct: every field written. */
    memset(&ss, 0xAB, sizeof ss);
    ss.struct_size = sizeof ss;
    CHECK_RC(gd_server_stats(m.server, &ss), GD_OK);
    CHECK(ss.struct_size == sizeof ss && ss.challenges == 0 && ss.auth_unsigned_accepted == 0);

    CHECK_RC(gd_client_close(c), GD_OK);
    CHECK_RC(gd_server_close(m.server), GD_OK);
    rec_destroy(&r);
}

int main(void) {
    if (setup() != 0) return 1;
    keys_setup();
    RUN(key_id_names_a_key);
    RUN(members_with_the_key_join);
    RUN(wrong_key_and_no_key_never_appear);
    RUN(permissive_server_takes_keyless_members);
    RUN(invalid_keyrings_are_refused);
    RUN(watching_client_inherits_unless_told);
    RUN(rotation_moves_nothing);
    RUN(callers_from_before_authentication);
    return finish();
}
