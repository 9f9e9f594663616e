#!/bin/sh
# A private CA and a certificate for the gateway (SAN: gateway, localhost), made once.
set -eu
dir=$1
[ -f "$dir/gateway.crt" ] && exit 0
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
  -subj "/CN=ward compose CA" -keyout ca.key -out ca.crt
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=gateway" -keyout gateway.key -out gateway.csr
printf 'subjectAltName=DNS:gateway,DNS:localhost\n' > san.ext
openssl x509 -req -in gateway.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -extfile san.ext -out gateway.crt
chmod 0644 ca.crt gateway.crt gateway.key
