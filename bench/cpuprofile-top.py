#!/usr/bin/env python3
"""Self and inclusive time per function of a V8 .cpuprofile (node --cpu-prof).

Usage: python3 bench/cpuprofile-top.py CPU.*.cpuprofile [N]
"""
import json,sys,collections
p=json.load(open(sys.argv[1]))
nodes={n['id']:n for n in p['nodes']}
self_t=collections.Counter()
dt=p['timeDeltas']; samples=p['samples']
for s,d in zip(samples,dt):
    self_t[s]+=d
by=collections.Counter()
for nid,t in self_t.items():
    cf=nodes[nid]['callFrame']
    key=f"{cf['functionName'] or '(anon)'} {cf['url'].split('/')[-1]}:{cf['lineNumber']}"
    by[key]+=t
tot=sum(by.values())
for k,v in by.most_common(int(sys.argv[2]) if len(sys.argv)>2 else 30):
    print(f"{v/tot*100:5.1f}% {v/1000:8.1f}ms {k}")
# inclusive
parent={}
for n in p['nodes']:
    for c in n.get('children',[]): parent[c]=n['id']
incl=collections.Counter()
for nid,t in self_t.items():
    seen=set(); x=nid
    while x is not None:
        cf=nodes[x]['callFrame']; key=f"{cf['functionName'] or '(anon)'} {cf['url'].split('/')[-1]}:{cf['lineNumber']}"
        if key not in seen: incl[key]+=t; seen.add(key)
        x=parent.get(x)
print("--- inclusive")
for k,v in incl.most_common(40):
    print(f"{v/tot*100:5.1f}% {k}")
