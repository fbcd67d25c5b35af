#!/usr/bin/env bash
# Starts the local PostgreSQL and RabbitMQ the tests use, where they are installed and not
# running, and waits until both answer. Does nothing to services that already run.
set -euo pipefail

if command -v pg_isready >/dev/null; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  fi
  for _ in $(seq 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  pg_isready -h 127.0.0.1 -p 5432 >/dev/null || { echo "services: PostgreSQL does not answer" >&2; exit 1; }
fi

if command -v rabbitmqctl >/dev/null; then
  if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
    echo "services: starting RabbitMQ"
    rabbitmq-server -detached
    sleep 2
  elif ! rabbitmq-diagnostics -q check_running >/dev/null 2>&1; then
    # The node is up but its application was stopped (a broker-restart test cut short).
    rabbitmqctl -q start_app
  fi
  rabbitmqctl -q await_startup --timeout 120
fi
