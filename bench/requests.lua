-- wrk script: sends the requests of $REQUESTS_FILE in order, each once
-- (then the last one again, should the run outlast the file). One request a
-- line, tab-separated: method, path, body (`-` for none), then any headers
-- as `Name: value`.
local requests = {}
for line in io.lines(os.getenv("REQUESTS_FILE")) do
  local fields = {}
  for field in string.gmatch(line, "[^\t]+") do
    fields[#fields + 1] = field
  end
  local headers = {}
  for i = 4, #fields do
    local name, value = string.match(fields[i], "^([^:]+): (.*)$")
    headers[name] = value
  end
  local body = nil
  if fields[3] ~= "-" then
    body = fields[3]
    headers["Content-Type"] = "application/json"
  end
  requests[#requests + 1] = { fields[1], fields[2], headers, body }
end
local sent = 0

-- Formatted when sent: wrk's own headers (Host) are set after this script
-- is loaded.
request = function()
  sent = sent + 1
  local r = requests[sent] or requests[#requests]
  return wrk.format(r[1], r[2], r[3], r[4])
end
