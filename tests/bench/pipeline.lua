-- wrk script: HTTP/1.1 pipelining, 16 GET requests per write (used by tests/bench/http.sh).
-- The batch is built once with wrk.format (method, path, headers from the command line); wrk counts
-- every response of the batch, so Requests/sec counts individual requests.
local depth = 16

init = function(args)
  local one = wrk.format(nil, "/")
  local parts = {}
  for i = 1, depth do
    parts[i] = one
  end
  batch = table.concat(parts)
end

request = function()
  return batch
end
