/*
 * A program outside the source tree, built against an installed gopherdiscovery
 * with pkg-config: a server, a member that watches, and its own name in the list.
 * Prints "outside c ok" and exits 0 on success.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <gopherdiscovery.h>

static int fail(const char *what) {
    char msg[256];
    gd_last_error_message(msg, sizeof msg);
    fprintf(stderr, "outside: %s: %s\n", what, msg);
    return 1;
}

int main(void) {
    gd_server_options so;
    gd_subscriber_options wo;
    gd_client_options co;
    gd_server *server;
    gd_client *client;
    const char *surveys[1];
    struct timespec pause = {0, 10 * 1000000L};
    int found = 0;

    gd_server_options_init(&so);
    so.survey = "tcp://127.0.0.1:0";
    so.publish = "tcp://127.0.0.1:0";
    so.snapshot = "tcp://127.0.0.1:0";
    if (gd_server_start(&so, &server) != GD_OK) return fail("server");
    gd_subscriber_options_init(&wo);
    wo.publish = gd_server_url(server, GD_SOCKET_PUBLISH);
    wo.snapshot = gd_server_url(server, GD_SOCKET_SNAPSHOT);
    surveys[0] = gd_server_url(server, GD_SOCKET_SURVEY);
    gd_client_options_init(&co);
    co.name = "outside-c";
    co.surveys = surveys;
    co.survey_count = 1;
    co.watch = &wo;
    if (gd_client_join(&co, &client) != GD_OK) return fail("join");
    /* Poll the copy of the list, up to 60 s. */
    for (int i = 0; i < 6000 && !found; i++) {
        gd_peer_list *list;
        if (gd_subscriber_peers(gd_client_subscriber(client), &list) != GD_OK) return fail("peers");
        found = list->count == 1 && strcmp(list->names[0], "outside-c") == 0;
        gd_peer_list_free(list);
        if (!found) nanosleep(&pause, NULL);
    }
    gd_client_close(client);
    gd_server_close(server);
    if (!found) {
        fprintf(stderr, "outside: never saw itself in the peer list\n");
        return 1;
    }
    printf("outside c ok (gopherdiscovery %s)\n", gd_version());
    return 0;
}
