# frozen_string_literal: true

# A small threaded HTTP/1.1 server with keep-alive (the proxy reuses connections) and a graceful
# stop: on SIGTERM or SIGINT it closes the listener, lets requests in flight finish, closes idle
# keep-alive connections, and exits 0 within STOP_GRACE seconds.
require "socket"
require_relative "demo_app"

class DemoServer
  REASONS = { 200 => "OK", 404 => "Not Found", 405 => "Method Not Allowed", 500 => "Internal Server Error" }.freeze
  IDLE_TIMEOUT = 5

  def initialize(port:, grace: Integer(ENV.fetch("STOP_GRACE", "25")))
    @port = port
    @grace = grace
    @stopping = false
    @busy = 0
    @lock = Mutex.new
    @threads = []
  end

  def run
    server = TCPServer.new("0.0.0.0", @port)
    reader, writer = IO.pipe
    %w[TERM INT].each { |sig| trap(sig) { writer.write_nonblock("x") rescue nil } } # rubocop:disable Style/RescueModifier
    DemoApp.log("listening on :#{@port}, version #{DemoApp.version}")
    loop do
      ready, = IO.select([server, reader])
      break if ready.include?(reader)

      client = server.accept_nonblock(exception: false)
      next if client == :wait_readable

      @threads << Thread.new(client) { |c| serve(c) }
      @threads.select!(&:alive?)
    end
    stop(server)
  end

  private

  def stop(server)
    DemoApp.log("SIGTERM: stopping; finishing requests in flight")
    @stopping = true
    server.close
    deadline = Time.now + @grace
    sleep 0.05 while @lock.synchronize { @busy }.positive? && Time.now < deadline
    @threads.each { |t| t.join([deadline - Time.now, 0.1].max) }
    DemoApp.log("stopped")
  end

  def serve(client)
    until @stopping
      ready, = IO.select([client], nil, nil, @stopping ? 0 : IDLE_TIMEOUT)
      break unless ready

      request_line = client.gets
      break if request_line.nil?

      @lock.synchronize { @busy += 1 }
      begin
        keep_alive = handle(client, request_line)
      ensure
        @lock.synchronize { @busy -= 1 }
      end
      break unless keep_alive
    end
  rescue IOError, SystemCallError
    nil
  ensure
    client.close unless client.closed?
  end

  def handle(client, request_line)
    method, path, http_version = request_line.split(" ", 3)
    headers = {}
    while (line = client.gets) && line != "\r\n" && line != "\n"
      name, value = line.split(":", 2)
      headers[name.strip.downcase] = value.to_s.strip
    end
    length = headers["content-length"].to_i
    client.read(length) if length.positive?

    status, type, body = DemoApp.call(method.to_s, path.to_s)
    keep_alive = !@stopping && keep_alive?(http_version.to_s, headers["connection"].to_s)
    client.write("HTTP/1.1 #{status} #{REASONS.fetch(status, 'OK')}\r\n" \
                 "Content-Type: #{type}\r\nContent-Length: #{body.bytesize}\r\n" \
                 "Connection: #{keep_alive ? 'keep-alive' : 'close'}\r\n\r\n")
    client.write(body) unless method == "HEAD"
    keep_alive
  end

  def keep_alive?(http_version, connection)
    return connection.casecmp?("keep-alive") if http_version.start_with?("HTTP/1.0")

    !connection.casecmp?("close")
  end
end
