-- wrk script: POSTs each token of $TOKENS_FILE once to the mint URL.
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
  tokens[#tokens + 1] = line
end
local next_token = 0

request = function()
  next_token = next_token + 1
  local token = tokens[next_token] or tokens[#tokens]
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" },
    '{"token":"' .. token .. '"}')
end
