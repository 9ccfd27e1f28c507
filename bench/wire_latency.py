"""Answer times as seen on the wire: reads `tcpdump -tt -nn -r CAPTURE` lines
of a capture of PSH segments on a server's port, pairs each connection's
request with the answer that follows it, and prints percentiles. It counts
from the request's last packet to the answer's first, so a load generator's
own delays are not in it (bench/README.md, "The mint profiled").
   tcpdump -B 65536 -i lo -nn -tt -s 100 -w cap.pcap \\
       'tcp port 18932 and (tcp[tcpflags] & tcp-push != 0)'
   tcpdump -nn -tt -r cap.pcap | python3 bench/wire_latency.py 18932"""
import sys

port = "." + sys.argv[1]
asked = {}
times = []
for line in sys.stdin:
    fields = line.split()
    if len(fields) < 5:
        continue
    at, source, target = float(fields[0]), fields[2], fields[4].rstrip(":")
    if target.endswith(port):
        asked.setdefault(source, at)
    elif source.endswith(port) and target in asked:
        times.append(at - asked.pop(target))
if not times:
    sys.exit("no request and answer pairs in the input")
times.sort()


def percentile(fraction):
    return times[min(len(times) - 1, int(fraction * len(times)))] * 1000


print(
    f"{len(times)} answers: p50 {percentile(0.5):.2f} ms, p90 {percentile(0.9):.2f} ms, "
    f"p99 {percentile(0.99):.2f} ms, p99.9 {percentile(0.999):.2f} ms, "
    f"max {times[-1] * 1000:.1f} ms"
)
