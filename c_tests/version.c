/* Prints the library's version and the OpenSSL it runs on, one per line. */
#include <stdio.h>
#include <string.h>

#include "conntls.h"

int main(void) {
    if (strcmp(conn_tls_version(), CONN_TLS_VERSION) != 0) return 1;
    printf("%s\n%s\n", conn_tls_version(), conn_tls_openssl_version());
    return 0;
}
