#!/usr/bin/env bash
# A compact version of the official postgres image's docker-entrypoint.sh (same environment
# contract, same first-run behaviour). Test equipment for Railhead.
set -Eeuo pipefail

# file_env VAR [DEFAULT]: VAR or VAR_FILE (not both)
file_env() {
	local var=$1 fileVar="${1}_FILE" def=${2:-} val
	if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
		echo >&2 "error: both $var and $fileVar are set (but are exclusive)"
		exit 1
	fi
	val=$def
	if [ "${!var:-}" ]; then
		val=${!var}
	elif [ "${!fileVar:-}" ]; then
		val=$(<"${!fileVar}")
	fi
	export "$var"="$val"
	unset "$fileVar"
}

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" = 'postgres' ] && [ "$(id -u)" = '0' ]; then
	mkdir -p "$PGDATA"
	chown -R postgres "$PGDATA" 2>/dev/null || :
	chmod 700 "$PGDATA" 2>/dev/null || :
	mkdir -p /var/run/postgresql
	chown -R postgres /var/run/postgresql
	chmod 3777 /var/run/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = 'postgres' ]; then
	mkdir -p "$PGDATA"
	chmod 700 "$PGDATA" 2>/dev/null || :
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		file_env POSTGRES_PASSWORD
		file_env POSTGRES_USER postgres
		file_env POSTGRES_DB "$POSTGRES_USER"
		file_env POSTGRES_INITDB_ARGS
		: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
		if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
			cat >&2 <<-'EOE'
				Error: Database is uninitialized and superuser password is not specified.
				       You must specify POSTGRES_PASSWORD to a non-empty value for the
				       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

				       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
				       connections without a password. This is *not* recommended.
			EOE
			exit 1
		fi
		# shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of words, as in the official image
		initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
			--encoding=UTF8 --locale=C.UTF-8 $POSTGRES_INITDB_ARGS
		printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

		export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
		pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
		psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
		if [ "$POSTGRES_DB" != 'postgres' ]; then
			"${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
				CREATE DATABASE :"db" ;
			EOSQL
		fi
		for f in /docker-entrypoint-initdb.d/*; do
			# shellcheck disable=SC1090  # init scripts are the user's
			case "$f" in
				*.sh) echo "$0: running $f"; if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
				*.sql) echo "$0: running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
				*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" ;;
				*) if [ -e "$f" ]; then echo "$0: ignoring $f"; fi ;;
			esac
		done
		pg_ctl -D "$PGDATA" -m fast -w stop
		unset PGPASSWORD
		echo
		echo 'PostgreSQL init process complete; ready for start up.'
		echo
	else
		echo
		echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
		echo
	fi
fi

exec "$@"
