#!/usr/bin/env bash
# make-certs.sh OUTDIR — test/demo PKI for metad (and etcd), made with the openssl CLI only.
#
# Writes into OUTDIR (created if missing):
#   ca.pem ca-key.pem                  test CA
#   server.pem server-key.pem          server cert: SANs 127.0.0.1, ::1, localhost;
#                                      extendedKeyUsage serverAuth + clientAuth (etcd also
#                                      uses the server cert as a client for its own gateway)
#   client.pem client-key.pem          client cert signed by ca.pem (CN=client, clientAuth)
#   other-ca.pem other-ca-key.pem      a second, unrelated CA
#   other-client.pem other-client-key.pem   client cert signed by the other CA (must be refused)
#   other-server.pem other-server-key.pem   server cert (same SANs and usages as server.pem)
#                                      signed by the other CA: a peer from another PKI
#
# Keys are EC P-256 (accepted by etcd's Go TLS stack and by gRPC core / BoringSSL / OpenSSL).
# Idempotent: if every output already exists and verifies, nothing is regenerated.
# No prompts, no config files left behind. Certificates are valid for 10 years.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out=$1
mkdir -p "$out"
cd "$out"

DAYS=3650
outputs=(ca.pem ca-key.pem server.pem server-key.pem client.pem client-key.pem
         other-ca.pem other-ca-key.pem other-client.pem other-client-key.pem
         other-server.pem other-server-key.pem)

all_present() {
  local f
  for f in "${outputs[@]}"; do [ -s "$f" ] || return 1; done
  openssl verify -CAfile ca.pem server.pem client.pem >/dev/null 2>&1 || return 1
  openssl verify -CAfile other-ca.pem other-client.pem other-server.pem >/dev/null 2>&1 || return 1
}

if all_present; then
  exit 0
fi

# Work in a private temp dir and move the results in at the end, so a half-finished
# run never leaves a mixed set behind.
work=$(mktemp -d "${TMPDIR:-/tmp}/metad-certs.XXXXXX")
trap 'rm -rf "$work"' EXIT

newkey() { # newkey FILE
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod 600 "$1"
}

make_ca() { # make_ca NAME CN
  newkey "$work/$1-key.pem"
  openssl req -new -x509 -sha256 -days "$DAYS" -key "$work/$1-key.pem" \
    -subj "/O=metad test/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$work/$1.pem" 2>/dev/null
}

make_leaf() { # make_leaf NAME CA CN EXTFILE
  newkey "$work/$1-key.pem"
  openssl req -new -sha256 -key "$work/$1-key.pem" -subj "/O=metad test/CN=$3" \
    -out "$work/$1.csr" 2>/dev/null
  openssl x509 -req -sha256 -days "$DAYS" -in "$work/$1.csr" \
    -CA "$work/$2.pem" -CAkey "$work/$2-key.pem" -set_serial "0x$(openssl rand -hex 16)" \
    -extfile "$4" -out "$work/$1.pem" 2>/dev/null
  rm -f "$work/$1.csr"
}

cat > "$work/server.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
authorityKeyIdentifier=keyid
EOF
cat > "$work/client.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
authorityKeyIdentifier=keyid
EOF

make_ca ca "metad test CA"
make_leaf server ca "metad server" "$work/server.ext"
make_leaf client ca "client" "$work/client.ext"
make_ca other-ca "unrelated test CA"
make_leaf other-client other-ca "other client" "$work/client.ext"
make_leaf other-server other-ca "other server" "$work/server.ext"

openssl verify -CAfile "$work/ca.pem" "$work/server.pem" "$work/client.pem" >/dev/null
openssl verify -CAfile "$work/other-ca.pem" "$work/other-client.pem" "$work/other-server.pem" >/dev/null

for f in "${outputs[@]}"; do
  mv -f "$work/$f" "$f"
done
