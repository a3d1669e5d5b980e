#!/usr/bin/env bash
# Start the machine's PostgreSQL cluster if it is not accepting connections on 127.0.0.1:5432.
set -euo pipefail
host=127.0.0.1 port=5432

ready() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }

if ready; then exit 0; fi
if ! command -v pg_ctlcluster >/dev/null; then
    echo "PostgreSQL is not running on $host:$port and pg_ctlcluster is not installed." >&2
    echo "Start a server there (trust auth for user postgres) or set TIMESTEP_TEST_PG_URL." >&2
    exit 1
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
echo "Starting PostgreSQL $version cluster 'main'..." >&2
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 60); do
    if ready; then exit 0; fi
    sleep 0.5
done
echo "PostgreSQL did not become ready on $host:$port." >&2
exit 1
