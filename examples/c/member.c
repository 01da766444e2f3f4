/*
 * A member that keeps a groupcache-style peer pool current, in C.
 *
 *     member NAME SURVEY_URL[,SURVEY_URL...] PUBLISH_URL SNAPSHOT_URL [KEY=VALUE]...
 *
 * Joins the mesh as NAME (with the metadata given), answering every server whose
 * survey URL is in the comma-separated list, and watches it: on every
 * change of the member set it replaces its pool with the full sorted peer list
 * and prints "pool: NAME NAME ..." ("pool: -" when empty). Prints "joined NAME"
 * once it has joined; runs until SIGINT or SIGTERM, then leaves. With
 * GOPHERDISCOVERY_KEYRING_FILE set, it signs and checks with that keyring (its
 * subscriber takes the client's).
 * Build: cc -std=c99 member.c $(pkg-config --cflags --libs gopherdiscovery)
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gopherdiscovery.h>

/* The application's pool: replaced whole on every change, as groupcache's
 * HTTPPool.Set(peers...) wants. The callback runs on a library thread, so the
 * pool has a lock. */
struct pool {
    pthread_mutex_t lock;
    char **peers;
    size_t count;
};

static void pool_set(void *user, const char *const *peers, size_t count) {
    struct pool *pool = user;
    /* The strings live only during the callback: copy them. */
    char **copy = calloc(count ? count : 1, sizeof *copy);
    for (size_t i = 0; copy && i < count; i++) {
        copy[i] = malloc(strlen(peers[i]) + 1);
        if (copy[i]) strcpy(copy[i], peers[i]);
    }
    pthread_mutex_lock(&pool->lock);
    for (size_t i = 0; i < pool->count; i++) free(pool->peers[i]);
    free(pool->peers);
    pool->peers = copy;
    pool->count = copy ? count : 0;
    printf("pool:");
    for (size_t i = 0; i < pool->count; i++) printf(" %s", pool->peers[i]);
    printf("%s\n", pool->count ? "" : " -");
    fflush(stdout);
    pthread_mutex_unlock(&pool->lock);
}

static int fail(const char *what) {
    char msg[256];
    gd_last_error_message(msg, sizeof msg);
    fprintf(stderr, "member: %s: %s\n", what, msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s NAME SURVEY_URL[,SURVEY_URL...] PUBLISH_URL SNAPSHOT_URL [KEY=VALUE]...\n",
                argv[0]);
        return 2;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    size_t n_meta = (size_t)argc - 5;
    gd_metadata_entry *meta = calloc(n_meta ? n_meta : 1, sizeof *meta);
    if (!meta) return 1;
    for (size_t i = 0; i < n_meta; i++) {
        char *kv = argv[5 + i], *eq = strchr(kv, '=');
        if (!eq) {
            fprintf(stderr, "member: expected KEY=VALUE, got %s\n", kv);
            free(meta);
            return 2;
        }
        *eq = '\0';
        meta[i].key = kv;
        meta[i].value = eq + 1;
    }

    struct pool pool = {PTHREAD_MUTEX_INITIALIZER, NULL, 0};
    gd_subscriber_options watch;
    gd_subscriber_options_init(&watch);
    watch.publish = argv[3];
    watch.snapshot = argv[4];
    watch.on_peers = pool_set;
    watch.user = &pool;

    /* SURVEY_URL is a comma-separated list: split it in place. */
    size_t n_surveys = 1;
    for (const char *c = argv[2]; *c; c++) n_surveys += *c == ',';
    const char **surveys = calloc(n_surveys, sizeof *surveys);
    if (!surveys) {
        free(meta);
        return 1;
    }
    surveys[0] = argv[2];
    for (size_t i = 1; i < n_surveys; i++) {
        char *comma = strchr(surveys[i - 1], ',');
        *comma = '\0';
        surveys[i] = comma + 1;
    }
    gd_client_options opts;
    gd_client_options_init(&opts);
    opts.name = argv[1];
    opts.surveys = surveys;
    opts.survey_count = n_surveys;
    opts.metadata = meta;
    opts.metadata_count = n_meta;
    opts.watch = &watch;
    /* Read during gd_client_join only; NULL or "": no keyring (auth off). */
    const char *keyring = getenv("GOPHERDISCOVERY_KEYRING_FILE");
    if (keyring != NULL && *keyring != '\0') opts.keyring_file = keyring;

    gd_client *client = NULL; /* written only on success */
    if (gd_client_join(&opts, &client) != GD_OK) {
        free(meta);
        free(surveys);
        return fail("join"); /* nothing to close: client was never set */
    }
    free(meta); /* read during gd_client_join only */
    free(surveys);
    printf("joined %s\n", argv[1]);
    fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    /* Waits for a callback in progress; none runs after it returns. */
    if (gd_client_close(client) != GD_OK) return fail("close");
    for (size_t i = 0; i < pool.count; i++) free(pool.peers[i]);
    free(pool.peers);
    return 0;
}
