/*
 * A discovery server in C.
 *
 *     server [SURVEY_URL PUBLISH_URL SNAPSHOT_URL]
 *
 * Prints "serving survey=... publish=... snapshot=..." once it listens (tcp port
 * 0 shows as the real port), then runs until SIGINT or SIGTERM.
 * Build: cc -std=c99 server.c $(pkg-config --cflags --libs gopherdiscovery)
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>

#include <gopherdiscovery.h>

int main(int argc, char **argv) {
    if (argc != 1 && argc != 4) {
        fprintf(stderr, "usage: %s [SURVEY_URL PUBLISH_URL SNAPSHOT_URL]\n", argv[0]);
        return 2;
    }
    /* Block the stop signals before the library starts its threads, so that
     * they all inherit the mask and sigwait() below takes the signal. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    gd_server_options opts;
    gd_server_options_init(&opts);
    if (argc == 4) {
        opts.survey = argv[1];
        opts.publish = argv[2];
        opts.snapshot = argv[3];
    }
    gd_server *server;
    gd_result rc = gd_server_start(&opts, &server);
    if (rc != GD_OK) {
        char msg[256];
        gd_last_error_message(msg, sizeof msg);
        fprintf(stderr, "server: %s\n", msg);
        return 1;
    }
    printf("serving survey=%s publish=%s snapshot=%s\n", gd_server_url(server, GD_SOCKET_SURVEY),
           gd_server_url(server, GD_SOCKET_PUBLISH), gd_server_url(server, GD_SOCKET_SNAPSHOT));
    fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    gd_server_close(server);
    return 0;
}
