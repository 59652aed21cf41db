-- wrk script for scripts/load-test.sh: POST /api/v1/orders, valid limit orders.
--
-- Environment (set by load-test.sh):
--   ETS_LT_TOKEN       an API token whose user is exchange member for every name below
--   ETS_LT_MEMBERS     members to rotate through, space-separated (each has cash to buy and
--                      at least a few tonnes lodged to sell)
--   ETS_LT_INSTRUMENT  instrument code, e.g. CEA-2024
--   ETS_LT_CLOSE       its previous close in fen (the listed band is +/-10% around it)
--   ETS_LT_SPREAD      ticks away from the close (default 5; far inside the band)
--   ETS_LT_CROSS=1     the trading flow (below) instead of the resting one
--
-- The flow alternates: a GTC buy of 1 t at 1..SPREAD ticks below the close (it rests in the
-- book, its cash reserved), then an IOC sell of 1 t at 1..SPREAD ticks above the close (checked
-- against the member's lodged units, then cancelled unfilled). Buys sit below every sell, so
-- nothing trades: the demo's members have only tens of tonnes lodged at the exchange and the
-- API has no way to lodge more, so a flow whose sells fill would run out of units within a
-- second and be refused. Every response is counted by status; refusals by status, `error` kind
-- and message (digits blanked); done() prints the breakdown.
--
-- The trading flow (ETS_LT_CROSS=1; the members have lodged units for it through
-- POST /api/v1/lodgements): a GTC buy of 1 t at the close by one member, then an IOC sell of
-- 1 t at SPREAD ticks below the close by the next member, which trades with the resting buy at
-- the close. Every pair of orders makes one trade; done() counts the trades the answers report.

local instrument = os.getenv("ETS_LT_INSTRUMENT")
local close = tonumber(os.getenv("ETS_LT_CLOSE"))
local spread = tonumber(os.getenv("ETS_LT_SPREAD") or "5")
local cross = os.getenv("ETS_LT_CROSS") == "1"
local auth = "Bearer " .. os.getenv("ETS_LT_TOKEN")
local members = {}
for m in string.gmatch(os.getenv("ETS_LT_MEMBERS"), "%S+") do
    table.insert(members, m)
end
local headers = { ["Authorization"] = auth, ["Content-Type"] = "application/json" }

local threads = {}
function setup(thread)
    thread:set("thread_id", #threads)
    table.insert(threads, thread)
end

function init(args)
    n = 0
    statuses = {}
    refusals = {}
    trades = 0
    math.randomseed(1234 + (thread_id or 0))
end

function request()
    local i = n
    n = n + 1
    local buy = (i % 2) == 0
    local member = members[(math.floor(i / 2) % #members) + 1]
    local offset = math.random(1, spread)
    local body
    if cross then
        local side, price, tif = "buy", close, "gtc"
        if not buy then
            side, price, tif = "sell", close - spread, "ioc"
            member = members[(math.floor(i / 2) + 1) % #members + 1]
        end
        body = string.format('{"instrument":"%s","side":"%s","price_fen":%d,"qty_t":1,"tif":"%s","member":"%s"}',
            instrument, side, price, tif, member)
    elseif buy then
        body = string.format('{"instrument":"%s","side":"buy","price_fen":%d,"qty_t":1,"tif":"gtc","member":"%s"}',
            instrument, close - offset, member)
    else
        body = string.format('{"instrument":"%s","side":"sell","price_fen":%d,"qty_t":1,"tif":"ioc","member":"%s"}',
            instrument, close + offset, member)
    end
    return wrk.format("POST", "/api/v1/orders", headers, body)
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    for _ in string.gmatch(body, '"kind":"') do
        trades = trades + 1
    end
    if status ~= 201 then
        local kind = string.match(body, '"error":"([^"]*)"') or "?"
        local message = string.match(body, '"message":"([^"]*)"') or string.sub(body, 1, 120)
        local key = status .. " " .. kind .. ": " .. string.gsub(message, "%d+", "N")
        refusals[key] = (refusals[key] or 0) + 1
    end
end

function done(summary, latency, requests)
    local all, refused, traded = {}, {}, 0
    for _, t in ipairs(threads) do
        traded = traded + t:get("trades")
        for k, v in pairs(t:get("statuses")) do all[k] = (all[k] or 0) + v end
        for k, v in pairs(t:get("refusals")) do refused[k] = (refused[k] or 0) + v end
    end
    local total = 0
    for _, v in pairs(all) do total = total + v end
    local accepted = all[201] or 0
    io.write(string.format("orders: answered %d, accepted %d, refused %d, trades %d (%.0f/s)\n", total, accepted, total - accepted,
        traded, traded / (summary.duration / 1e6)))
    for k, v in pairs(refused) do
        io.write(string.format("orders: refused %d x %s\n", v, k))
    end
end
