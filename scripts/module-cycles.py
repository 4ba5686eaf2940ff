#!/usr/bin/env python3
"""Fails if any crate's modules import each other in a cycle.

Usage: scripts/module-cycles.py crates/*/src

Each file is a node; `use crate::a::b`, `crate::a::b::Item` and `super::` paths are edges to
the deepest module they name (a parent declaring its children is not an edge). A cycle means
two rooms that cannot be understood or changed apart: move what both need one layer down.
"""
import os, re, sys


def check(root):
    mods={}
    for dp,_,fs in os.walk(root):
        for f in fs:
            if not f.endswith('.rs'): continue
            p=os.path.join(dp,f); rel=os.path.relpath(p,root)[:-3]
            parts=rel.split('/')
            if parts[-1] in ('mod','lib','main'): parts=parts[:-1]
            src=open(p).read()
            src=re.sub(r'#\[cfg\(test\)\]\s*mod tests\s*\{.*','',src,flags=re.S)
            mods[tuple(parts)]=src
    def resolve(path):
        # path: tuple of segments; return longest prefix that's a module
        for n in range(len(path),-1,-1):
            if tuple(path[:n]) in mods: return tuple(path[:n])
        return ()
    edges={}
    for m,src in mods.items():
        # expand use groups crudely: crate::x::{a, b::c}
        for mt in re.finditer(r'(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)(?:::\{([^}]*)\})?',src):
            base,rest,group=mt.group(1),mt.group(2),mt.group(3)
            segs=[s for s in rest.split('::') if s]
            if base=='crate': start=[]
            elif base=='super':
                # module m is file; super of m
                start=list(m[:-1]) if len(m)>0 else []
                # in mod.rs files, super refers to parent of dir; m already is dir path
            else: start=list(m)
            # handle chained super::super
            while segs and segs[0]=='super':
                start=start[:-1]; segs=segs[1:]
            targets=[start+segs]
            if group:
                for g in group.split(','):
                    g=g.strip().split(' as ')[0]
                    if g: targets.append(start+segs+[x for x in g.split('::') if x])
            for t in targets:
                r=resolve(t)
                if r!=m and r!=():
                    # ignore edges to ancestors (mod.rs declaring children is not an import)
                    edges.setdefault(m,set()).add(r)
    nodes=set(mods)
    idx={};low={};st=[];on=set();res=[];c=[0]
    sys.setrecursionlimit(10000)
    global_cycles = None
    def sc(v):
        idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
        for w in edges.get(v,()):
            if w not in idx: sc(w);low[v]=min(low[v],low[w])
            elif w in on: low[v]=min(low[v],idx[w])
        if low[v]==idx[v]:
            comp=[]
            while True:
                w=st.pop();on.discard(w);comp.append(w)
                if w==v:break
            if len(comp)>1: res.append(comp)
    for v in sorted(nodes):
        if v not in idx: sc(v)
    name=lambda t:'::'.join(t) or 'crate'
    for comp in res:
        print(root + ':', len(comp), 'modules in a cycle:', sorted(name(x) for x in comp))
        cs=set(comp)
        for x in sorted(comp):
            print('  ',name(x),'->',sorted(name(y) for y in edges.get(x,()) if y in cs))
    return res


if __name__ == "__main__":
    failed = False
    for root in sys.argv[1:]:
        if check(root):
            failed = True
    sys.exit(1 if failed else 0)
