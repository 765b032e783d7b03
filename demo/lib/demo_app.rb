# frozen_string_literal: true

# A tiny Rails-shaped app with no gems: only Ruby's standard library and the sqlite3 command line
# tool. It answers the paths a Railhead deploy relies on:
#   GET /up       200 "ok" when the SQLite database answers (the proxy's health check)
#   GET /version  the release version (RAILHEAD_VERSION, else APP_VERSION baked at build time)
#   GET /         a page with a visit counter kept in SQLite (storage/production.sqlite3)
# and it stops gracefully on SIGTERM: it stops accepting, finishes requests in flight, then exits.
require "open3"
require "socket"

module DemoApp
  STORAGE = ENV.fetch("STORAGE_DIR", File.expand_path("../storage", __dir__))
  DATABASE = File.join(STORAGE, ENV.fetch("SQLITE_DATABASE", "production.sqlite3"))

  module_function

  def version
    ENV["RAILHEAD_VERSION"] || ENV["APP_VERSION"] || "dev"
  end

  def log(message)
    $stdout.puts("[demo] #{Time.now.utc.strftime('%Y-%m-%dT%H:%M:%SZ')} #{message}")
    $stdout.flush
  end

  # Runs SQL through the sqlite3 CLI with a busy timeout, so web and jobs can write at once.
  def sql(statement)
    out, err, status = Open3.capture3("sqlite3", "-batch", "-cmd", ".timeout 5000", DATABASE, statement)
    raise "sqlite3 failed: #{err.strip}" unless status.success?

    out.strip
  end

  def migrate
    Dir.mkdir(STORAGE) unless Dir.exist?(STORAGE)
    sql("PRAGMA journal_mode=WAL;") # Litestream replicates WAL-mode databases only
    sql("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL DEFAULT 0);")
    sql("INSERT OR IGNORE INTO counters (name, value) VALUES ('visits', 0), ('job_ticks', 0);")
  end

  def increment(name)
    sql("UPDATE counters SET value = value + 1 WHERE name = '#{name}'; SELECT value FROM counters WHERE name = '#{name}';").to_i
  end

  def counter(name)
    sql("SELECT value FROM counters WHERE name = '#{name}';").to_i
  end

  def postgres_status
    url = ENV["DATABASE_URL"]
    return "not configured" if url.nil? || url.empty?

    _out, _err, status = Open3.capture3("pg_isready", "-q", "-t", "2", "-d", url)
    status.success? ? "reachable" : "not reachable"
  rescue Errno::ENOENT
    "pg_isready not installed"
  end

  # Returns [status, content_type, body].
  def call(method, path)
    return [405, "text/plain", "method not allowed\n"] unless %w[GET HEAD].include?(method)

    case path.split("?").first
    when "/up"
      sql("SELECT 1;") # the database answers (the app boots before or after bin/migrate)
      [200, "text/plain", "ok\n"]
    when "/version"
      [200, "text/plain", "#{version}\n"]
    when "/"
      visits = increment("visits")
      body = <<~HTML
        <!doctype html>
        <html><head><title>Railhead demo</title></head>
        <body>
          <h1>Railhead demo</h1>
          <p>Version <code>#{version}</code> on <code>#{Socket.gethostname}</code></p>
          <p>Visits: <strong id="visits">#{visits}</strong> (SQLite, replicated by Litestream)</p>
          <p>Job ticks: <strong id="job-ticks">#{counter('job_ticks')}</strong> (bin/jobs)</p>
          <p>Postgres: #{postgres_status}</p>
        </body></html>
      HTML
      [200, "text/html; charset=utf-8", body]
    else
      [404, "text/plain", "not found\n"]
    end
  rescue StandardError => e
    log("error #{e.class}: #{e.message}")
    [500, "text/plain", "internal error\n"]
  end
end
