#!/usr/bin/env bash
# Makes throwaway test certificates in DIR (default: ./certs):
#   ca.{crt,key}            the test CA (ECDSA P-256)
#   server.{crt,key}        localhost / 127.0.0.1 / ::1 / the test namespaces' addresses,
#                           signed by ca
#   server2.{crt,key}       the same names, another key: for rotation tests
#   server-rsa.{crt,key}    RSA-2048, same names
#   server-rsa4096.{crt,key} RSA-4096, same names: the costliest handshakes (storms)
#   client.{crt,key}        a client certificate signed by ca, with two SAN URIs (the
#                           second names the ACL user "alice", as Valkey 9.1 reads them)
#   other-ca.crt            an unrelated CA: peers that trust only it must fail
#   other.{crt,key}         localhost signed by other-ca
#   wrong-host.{crt,key}    signed by ca but for wrong.example only
#   server-enc.key          server.key encrypted with the passphrase "s3cret"
#   dh.pem                  2048-bit DH parameters (ffdhe2048)
#   expired.crt, notyet.crt server.key's certificate, valid only in 2020 / only from 2099
#   badtime.crt             server.crt with month 13 in its notAfter: a time OpenSSL parses
#                           but cannot read
set -euo pipefail
dir=${1:-certs}
mkdir -p "$dir"
cd "$dir"
days=3650
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

make_ca() { # name
  ec "$1.key"
  openssl req -x509 -new -key "$1.key" -days $days -subj "/CN=conntls test $1" -out "$1.crt" 2>/dev/null
}

sign() { # name ca san [keytype: ec, rsa (2048 bits) or rsa4096]
  case ${4:-ec} in
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key" 2>/dev/null ;;
    rsa4096) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out "$1.key" 2>/dev/null ;;
    *) ec "$1.key" ;;
  esac
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days $days -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

make_ca ca
make_ca other-ca
# With the addresses of the test network namespaces (tests/common/netns.rs), where
# servers run for the black-hole and failover tests.
local_names="DNS:localhost,IP:127.0.0.1,IP:::1,IP:10.213.77.1,IP:10.213.77.2"
sign server ca "$local_names"
sign server2 ca "$local_names"
sign server-rsa ca "$local_names" rsa
sign server-rsa4096 ca "$local_names" rsa4096
sign client ca "DNS:client.test,URI:spiffe://conntls.test/client,URI:alice"
sign other other-ca "$local_names"
sign wrong-host ca "DNS:wrong.example"
openssl pkey -in server.key -aes256 -passout pass:s3cret -out server-enc.key
openssl genpkey -genparam -algorithm DH -pkeyopt dh_param:ffdhe2048 -out dh.pem 2>/dev/null

# Certificates outside their validity period: `openssl ca` takes explicit dates.
mkdir -p ca-db && : > ca-db/index.txt && echo 1000 > ca-db/serial
cat > ca-db/ca.cnf <<CNF
[ca]
default_ca = test_ca
[test_ca]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
CNF
openssl req -new -key server.key -subj "/CN=dated" -out dated.csr 2>/dev/null
for dates in "expired 20200101000000Z 20200102000000Z" "notyet 20990101000000Z 20990102000000Z"; do
  set -- $dates
  openssl ca -batch -config ca-db/ca.cnf -cert ca.crt -keyfile ca.key -in dated.csr -out "$1.crt" \
    -startdate "$2" -enddate "$3" -notext 2>/dev/null
done
rm -rf ca-db dated.csr
# The signature no longer matches, which is checked only after the validity period.
openssl x509 -in server.crt -outform DER | perl -0777 -pe 's/(\x17\x0d\d{12}Z\x17\x0d\d\d)\d\d/${1}13/ or die "no UTCTime pair"' \
  | openssl x509 -inform DER -out badtime.crt
rm -f ./*.srl
