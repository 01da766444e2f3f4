/*
 * A C member of an authenticated mesh, for python/tests/test_auth.py: joins as
 * NAME, answering the server at SURVEY_URL, with the one key given as 64 hex
 * digits in the environment variable GD_TEST_KEY_HEX (never on the command line,
 * where `ps` shows it). Prints "joined NAME"; runs until SIGINT or SIGTERM, then
 * leaves.
 *
 *     GD_TEST_KEY_HEX=... auth_member NAME SURVEY_URL
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gopherdiscovery.h>

static int fail(const char *what) {
    char msg[256];
    gd_last_error_message(msg, sizeof msg);
    fprintf(stderr, "auth_member: %s: %s\n", what, msg);
    return 1;
}

/* 64 hex digits to 32 bytes; 0 on success. */
static int from_hex(const char *hex, uint8_t out[32]) {
    if (hex == NULL || strlen(hex) != 64) return -1;
    for (size_t i = 0; i < 32; i++) {
        unsigned int byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) return -1;
        out[i] = (uint8_t)byte;
    }
    return 0;
}

/* The library copied the key during gd_client_join: clear ours (volatile, so the
 * stores are not optimised away). */
static void wipe(uint8_t *key, size_t len) {
    volatile uint8_t *p = key;
    for (size_t i = 0; i < len; i++) p[i] = 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: GD_TEST_KEY_HEX=... %s NAME SURVEY_URL\n", argv[0]);
        return 2;
    }
    uint8_t key[32];
    if (from_hex(getenv("GD_TEST_KEY_HEX"), key) != 0) {
        fprintf(stderr, "auth_member: GD_TEST_KEY_HEX must hold 64 hex digits\n");
        return 2;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    const char *surveys[1] = {argv[2]};
    const uint8_t *keys[1] = {key};
    gd_client_options opts;
    gd_client_options_init(&opts);
    opts.name = argv[1];
    opts.surveys = surveys;
    opts.survey_count = 1;
    opts.keys = keys;
    opts.keys_count = 1;

    gd_client *client = NULL; /* written only on success */
    int rc = gd_client_join(&opts, &client);
    wipe(key, sizeof key);
    if (rc != GD_OK) return fail("join");
    printf("joined %s\n", argv[1]);
    fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    if (gd_client_close(client) != GD_OK) return fail("close");
    return 0;
}
