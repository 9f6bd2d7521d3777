/* Makes a client certificate whose subject CN is NAME, or NAME, a NUL byte and SUFFIX
 * (what `openssl req -subj` cannot write): the impersonation of valkey #4577, where a CA
 * signs "admin\0.attacker.example" and a server comparing C strings reads "admin".
 *
 *   cn_cert CA_CRT CA_KEY OUT_CRT OUT_KEY NAME [SUFFIX]
 *
 * An EC P-256 key, signed by the CA with SHA-256, valid for ten years from an hour ago,
 * extendedKeyUsage clientAuth. Exits 1 with OpenSSL's words on any failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static void fail(const char *what) {
    fprintf(stderr, "cn_cert: %s: ", what);
    ERR_print_errors_fp(stderr);
    fputc('\n', stderr);
    exit(1);
}

static void *read_pem(const char *path, int key) {
    FILE *f = fopen(path, "r");
    if (!f) fail(path);
    void *thing = key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL) : (void *)PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!thing) fail(path);
    return thing;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key) {
    FILE *f = fopen(path, "w");
    if (!f) fail(path);
    int ok = cert ? PEM_write_X509(f, cert) : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    if (fclose(f) != 0 || !ok) fail(path);
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: cn_cert CA_CRT CA_KEY OUT_CRT OUT_KEY NAME [SUFFIX]\n");
        return 2;
    }
    X509 *ca = read_pem(argv[1], 0);
    EVP_PKEY *ca_key = read_pem(argv[2], 1);
    unsigned char cn[256];
    size_t cn_len = strlen(argv[5]);
    if (cn_len >= sizeof cn) fail("NAME too long");
    memcpy(cn, argv[5], cn_len);
    if (argc == 7) {
        size_t suffix = strlen(argv[6]);
        if (cn_len + 1 + suffix > sizeof cn) fail("SUFFIX too long");
        cn[cn_len++] = 0;
        memcpy(cn + cn_len, argv[6], suffix);
        cn_len += suffix;
    }

    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    X509_NAME *subject = X509_NAME_new();
    if (!key || !cert || !subject) fail("allocate");
    if (!X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_ASC, cn, (int)cn_len, -1, 0)) fail("CN");
    BIGNUM *serial = BN_new();
    if (!serial || !BN_rand(serial, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
        !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)))
        fail("serial");
    BN_free(serial);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, ca, cert, NULL, NULL, 0);
    X509_EXTENSION *usage = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, "clientAuth");
    if (!X509_set_version(cert, 2) || !X509_set_subject_name(cert, subject) ||
        !X509_set_issuer_name(cert, X509_get_subject_name(ca)) || !X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert), 3650L * 86400) || !X509_set_pubkey(cert, key) || !usage ||
        !X509_add_ext(cert, usage, -1) || !X509_sign(cert, ca_key, EVP_sha256()))
        fail("sign");
    write_pem(argv[3], cert, NULL);
    write_pem(argv[4], NULL, key);
    X509_EXTENSION_free(usage);
    X509_NAME_free(subject);
    X509_free(cert);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    return 0;
}
