#!/bin/sh
# The image's entry point, also run by tests/deploy outside Docker: one subcommand per
# kind of process. Every long-running process is exec'd, so it is the container's main
# process and receives SIGTERM itself (no shell in between to swallow it).
#
#   entrypoint.sh web                 gunicorn (docker/gunicorn.conf.py; PORT, WEB_* variables)
#   entrypoint.sh migrate             apply migrations, then exit (the one-shot `migrate` service)
#   entrypoint.sh worker <consumer>   one registered consumer (manage.py runworker --list)
#   entrypoint.sh relay               the transactional-outbox relay
#   entrypoint.sh manage <args...>    any management command (createsuperuser, drf_create_token, ...)
#   entrypoint.sh health web | relay | worker <consumer>    healthcheck: exit 0 if healthy
set -eu

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"

usage() {
    echo "usage: entrypoint.sh web | migrate | worker <consumer> | relay | manage <args...> | health web|relay|worker <consumer>" >&2
    exit 64
}

[ $# -ge 1 ] || usage
command="$1"
shift
case "$command" in
    web)
        exec "$PYTHON" -m gunicorn commsplatform.wsgi -c docker/gunicorn.conf.py "$@"
        ;;
    migrate)
        exec "$PYTHON" manage.py migrate --noinput "$@"
        ;;
    worker)
        [ $# -ge 1 ] || usage
        exec "$PYTHON" manage.py runworker "$@"
        ;;
    relay)
        exec "$PYTHON" manage.py relay_outbox "$@"
        ;;
    manage)
        exec "$PYTHON" manage.py "$@"
        ;;
    health)
        [ $# -ge 1 ] || usage
        target="$1"
        shift
        case "$target" in
            web) exec "$PYTHON" docker/healthcheck_web.py ;;
            relay) exec "$PYTHON" manage.py worker_health --relay ;;
            worker)
                [ $# -eq 1 ] || usage
                exec "$PYTHON" manage.py worker_health "$1"
                ;;
            *) usage ;;
        esac
        ;;
    *)
        usage
        ;;
esac
