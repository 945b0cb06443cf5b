-- wrk: a fixed pause between requests on each connection, for runs below saturation.
-- WRK_DELAY_MS (default 2) is the pause; the offered rate is set by the number of connections.
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "2")
function delay()
  return pause
end
