-- wrk script: every request comes from another client, named in X-Forwarded-For
-- (the proxy trusts 127.0.0.1), so one generator can be a million clients.
-- The first address is 10.0.0.0 + the offset given after `--`.
local counter = 0
function init(args)
  counter = tonumber(args[1] or "0")
end
function request()
  local i = counter
  counter = counter + 1
  local ip = string.format("10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
  return wrk.format("GET", "/", { ["X-Forwarded-For"] = ip })
end
