#!/usr/bin/env python3
"""Buckets a `perf record -g` profile of a bench/profile.ts run by thread and leaf frame (the table in bench/README.md).

Usage: perf record -D 3000 -F 999 -g -o perf.data -- node --perf-basic-prof --import tsx bench/profile.ts 10 64 effect
       python3 bench/perf-buckets.py perf.data
"""
import sys, subprocess, collections, re
data = sys.argv[1]
out = subprocess.run(["perf","script","-i",data,"-F","tid,comm,ip,sym,dso"], capture_output=True, text=True).stdout
# perf script with callchains: first line per sample has tid/comm, following lines frames. Use -G to hide? fallback parse
cat = collections.Counter(); threads = collections.Counter()
main_tid = None
samples = []
cur = None
for line in out.splitlines():
    if not line.strip(): 
        cur=None; continue
    if not line.startswith((" ","\t")):
        parts=line.split()
        cur={'comm':parts[0],'tid':parts[1] if len(parts)>1 else '', 'frames':[]}
        samples.append(cur)
        # leaf may be on same line
        rest=line.split(None,2)
        if len(rest)>2: cur['frames'].append(rest[2])
    elif cur is not None:
        cur['frames'].append(line.strip())
tidcount=collections.Counter((s['comm'],s['tid']) for s in samples)
main=max((k for k in tidcount if k[0]=='node'), key=lambda k: tidcount[k])
def classify(s):
    leaf = s['frames'][0] if s['frames'] else ''
    stack = " ".join(s['frames'])
    thr = 'main' if (s['comm'],s['tid'])==main else ('uring-submit' if s['comm'].startswith('uring-sub') else 'uring-reap' if s['comm'].startswith('uring-rea') else 'other-node-thread')
    if thr=='other-node-thread':
        if re.search(r'Scaveng|MarkCompact|Heap|GC|Sweep|Concurrent', stack): return thr, 'V8 GC (parallel/concurrent)'
        if re.search(r'compiler|Compile|Turbofan|Maglev|Optimiz', stack): return thr, 'V8 JIT compiler'
        if re.search(r'uv_|worker', stack) or 'ThreadPoolWork' in stack: return thr, 'libuv/other'
        return thr, 'other'
    if thr in ('uring-submit','uring-reap'):
        if re.search(r'copy_user|memcpy|filemap_read|copy_page_to_iter|rep_movs|_copy_to_iter', leaf): return thr, 'kernel: page-cache copy'
        if re.search(r'io_uring|io_issue|io_read|io_submit|io_cqring|__io_', stack) and '[kernel' in leaf: return thr, 'kernel: io_uring (submit/reap)'
        if re.search(r'futex|schedule|finish_task_switch|try_to_wake|_raw_spin_unlock_irqrestore|pthread_cond|__lll', stack): return thr, 'wake-ups: futex/scheduler'
        if 'uring_core' in leaf: return thr, 'engine (Rust)'
        if re.search(r'napi|uv_async|node::', stack): return thr, 'napi tsfn / uv_async_send'
        if 'libc' in leaf and re.search(r'malloc|free|_int_', leaf): return thr, 'malloc/free'
        if '[kernel' in leaf: return thr, 'kernel: other'
        return thr, 'other'
    # main thread
    if re.search(r'Scaveng|MarkCompact|Heap::|GCTracer|Sweeper|MinorGC|IncrementalMarking|CollectGarbage', stack): return thr,'V8 GC'
    if re.search(r'compiler::|Compile|Maglev|Turbofan|Parse|Scanner', leaf): return thr,'V8 compile/parse'
    if 'node_modules/effect' in leaf: return thr,'JS: effect runtime'
    if 'src/internal/uring.ts' in leaf or 'src/services' in leaf or 'src/internal/validate' in leaf: return thr,'JS: Uring service wrapper (uring.ts, validate)'
    if 'RingClient.ts' in leaf: return thr,'JS: RingClient'
    if 'bench/' in leaf: return thr,'JS: bench driver'
    if 'uring_core' in leaf: return thr,'native binding/engine (Rust)'
    if re.search(r'io_uring|futex|schedule|finish_task_switch|try_to_wake|_raw_spin_unlock_irqrestore|epoll|eventfd', stack) and '[kernel' in leaf: return thr,'kernel: futex/epoll/wake-ups'
    if '[kernel' in leaf: return thr,'kernel: other (page faults, syscalls)'
    if re.search(r'Builtins_|JS:', leaf): 
        # attribute builtins to the nearest JS frame
        for f in s['frames'][1:6]:
            if 'node_modules/effect' in f: return thr,'JS: effect runtime'
            if 'uring.ts' in f: return thr,'JS: Uring service wrapper (uring.ts, validate)'
            if 'RingClient' in f: return thr,'JS: RingClient'
        return thr,'V8 builtins/other JS'
    if re.search(r'napi|v8impl|ThreadSafeFunction|uv_', stack): return thr,'napi/libuv (tsfn dispatch, arg conversion)'
    if re.search(r'malloc|free|_int_', leaf): return thr,'malloc/free'
    return thr,'node/v8 other'
for s in samples:
    t,c=classify(s); cat[(t,c)]+=1; threads[t]+=1
tot=len(samples)
print(f"samples {tot}")
for t,n in threads.most_common():
    print(f"{t:18s} {n/tot*100:5.1f}%")
    for (tt,c),m in sorted(cat.items(), key=lambda kv:-kv[1]):
        if tt==t and m/tot>0.003: print(f"    {c:50s} {m/tot*100:5.1f}%")
