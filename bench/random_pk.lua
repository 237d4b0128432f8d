-- wrk script: GET <BENCH_PREFIX><random key><BENCH_SUFFIX>, keys uniform in 1..BENCH_MAX_ID.
--
-- Each wrk thread seeds its generator with BENCH_SEED + its thread number, so the service and the
-- baseline are asked for the same key sequence. Used by bench/run.py:
--   BENCH_PREFIX=/items/ BENCH_MAX_ID=200000 wrk -t1 -c10 -d10s -s bench/random_pk.lua http://127.0.0.1:PORT
-- and, for an eq filter on a unique field:
--   BENCH_PREFIX=/items?email=eq.customer BENCH_SUFFIX=@example.org ...
-- and, with BENCH_SKIP_EVERY=n, a key that is a multiple of n is replaced by the key before it (the
-- enforcement section: every 10th row of `tenanted` is hidden from the reader, so it asks for visible keys only).

local prefix = os.getenv("BENCH_PREFIX") or "/items/"
local suffix = os.getenv("BENCH_SUFFIX") or ""
local max_id = tonumber(os.getenv("BENCH_MAX_ID") or "200000")
local base_seed = tonumber(os.getenv("BENCH_SEED") or "42")
local skip_every = tonumber(os.getenv("BENCH_SKIP_EVERY") or "0")
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("thread_number", threads)
end

function init(args)
    math.randomseed(base_seed + (thread_number or 0))
end

function request()
    local key = math.random(1, max_id)
    if skip_every > 1 and key % skip_every == 0 then
        key = key - 1
    end
    return wrk.format("GET", prefix .. key .. suffix)
end
