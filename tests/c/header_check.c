/*
 * Compiled as C99 and as C++17 (-Wall -Wextra -Wpedantic -Werror) by
 * tests/c/run.sh: the header alone must compile cleanly in both languages and
 * declare every call of the contract.
 */
#include <gopherdiscovery.h>

typedef void (*any_fn)(void);
#define FN(f) ((any_fn)(f))

/* Referenced so that a missing or renamed declaration fails the build. */
static const any_fn calls[] = {
    FN(gd_version), FN(gd_nng_version), FN(gd_wire_version), FN(gd_strerror), FN(gd_last_error_message),
    FN(gd_server_options_init), FN(gd_server_start), FN(gd_server_url), FN(gd_server_close),
    FN(gd_client_options_init), FN(gd_client_join), FN(gd_client_set_metadata),
    FN(gd_client_subscriber), FN(gd_client_close),
    FN(gd_subscriber_options_init), FN(gd_subscriber_open), FN(gd_subscriber_close),
    FN(gd_on_peers), FN(gd_on_event), FN(gd_subscriber_peers), FN(gd_peer_list_free), FN(gd_subscriber_servers), FN(gd_server_list_free),
    FN(gd_subscriber_state), FN(gd_subscriber_position),
    FN(gd_event_kind_str), FN(gd_reason_str), FN(gd_state_str),
    FN(gd_key_id), FN(gd_server_key_use), FN(gd_server_set_keyring), FN(gd_client_set_keyring), FN(gd_subscriber_set_keyring),
};

/* C99 has no static_assert: a negative array size fails instead. */
typedef char result_is_32_bits[sizeof(gd_result) == 4 ? 1 : -1];
typedef char ok_is_zero[GD_OK == 0 ? 1 : -1];
/* The keyring's sizes are integer constants, usable as array sizes. */
typedef char key_len_is_32[GD_KEY_LEN == 32 ? 1 : -1];
typedef char key_id_buffer[GD_KEY_ID_LEN];
typedef char auth_default_is_zero[GD_AUTH_DEFAULT == 0 ? 1 : -1];

int main(void) {
    gd_result rc = GD_OK;
    (void)sizeof(result_is_32_bits);
    (void)sizeof(ok_is_zero);
    (void)sizeof(key_len_is_32);
    (void)sizeof(key_id_buffer);
    (void)sizeof(auth_default_is_zero);
    return (int)rc + (calls[0] == 0);
}
