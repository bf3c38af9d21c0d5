"""Builds phases/problems/<position>.json from the problem texts and case generators below.

Expected outputs are computed by running each problem's reference solution ``<id>/correct.py``
(trusted code, run directly with python3). The tests then check that the independent JavaScript
reference ``<id>/correct.js`` agrees on every case through the sandbox, and that the wrong solutions
fail. Run after editing a problem:

    .venv/bin/python tests/code_solutions/build_bank.py
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote_plus

HERE = Path(__file__).resolve().parent
OUT = HERE.parent.parent / "phases" / "problems"


def lines(*rows) -> str:
    return "\n".join(str(r) for r in rows) + "\n"


# --- generators: each returns a list of hidden inputs (rng is seeded per problem) -----------------
def gen_lru(rng):
    cases = [lines("1 6", "put 1 1", "put 2 2", "get 1", "get 2", "put 2 5", "get 2"),
             lines("2 7", "put 1 1", "put 1 10", "put 2 2", "put 3 3", "get 1", "get 2", "get 3")]
    for cap, n, keys in ((2, 30, 4), (3, 60, 6), (5, 300, 12), (50, 3000, 120)):
        ops = []
        for _ in range(n):
            k = rng.randint(1, keys)
            ops.append(f"put {k} {rng.randint(1, 10 ** 6)}" if rng.random() < 0.5 else f"get {k}")
        ops.append(f"get {rng.randint(1, keys)}")
        cases.append(lines(f"{cap} {len(ops)}", *ops))
    return cases


def gen_rate(rng):
    cases = [lines("10 1 3", "0 a", "10 a", "19 a"), lines("5 2 6", "1 u", "1 u", "1 u", "3 u", "6 u", "6 u")]
    for w, k, n, users in ((3, 2, 20, 2), (10, 3, 200, 5), (60, 5, 2000, 30)):
        t, rows = 0, []
        for _ in range(n):
            t += rng.choice([0, 0, 1, 1, 2, 5])
            rows.append(f"{t} user{rng.randint(1, users)}")
        cases.append(lines(f"{w} {k} {n}", *rows))
    return cases


def gen_service(rng):
    cases = [lines("1 0"), lines("3 3", "1 2", "2 3", "3 1"), lines("4 2", "4 1", "2 3")]
    for n, m in ((8, 10), (60, 150), (500, 2000)):
        perm = list(range(1, n + 1))
        rng.shuffle(perm)
        edges = set()
        while len(edges) < m:
            i, j = sorted(rng.sample(range(n), 2))
            edges.add((perm[j], perm[i]))     # later in perm depends on earlier: acyclic
        cases.append(lines(f"{n} {m}", *(f"{a} {b}" for a, b in sorted(edges))))
    n = 50
    rows = [f"{i + 1} {i}" for i in range(1, n)] + [f"1 {n}"]      # one big cycle
    cases.append(lines(f"{n} {len(rows)}", *rows))
    return cases


def gen_rooms(rng):
    cases = [lines("1", "0 1"), lines("3", "1 5", "5 10", "10 15"), lines("4", "1 10", "2 3", "3 4", "4 11")]
    for n, span in ((20, 50), (500, 2000), (5000, 10 ** 9)):
        rows = []
        for _ in range(n):
            s = rng.randint(0, span - 1)
            rows.append(f"{s} {rng.randint(s + 1, min(span, s + max(2, span // 10)))}")
        cases.append(lines(n, *rows))
    rows = [f"{i * 7} {i * 7 + 7}" for i in range(100)] + [f"{i * 7} {i * 7 + 14}" for i in range(0, 100, 2)]
    cases.append(lines(len(rows), *rows))
    return cases


def gen_lis(rng):
    cases = [lines(1, "5"), lines(5, "2 2 2 2 2"), lines(6, "5 4 3 2 1 0")]
    for n, hi in ((50, 20), (2000, 500), (10000, 10 ** 9)):
        cases.append(lines(n, " ".join(str(rng.randint(-hi, hi)) for _ in range(n))))
    return cases


def gen_dijkstra(rng):
    cases = [lines("1 0"), lines("3 1", "1 2 5"), lines("4 4", "1 2 1", "2 4 1", "1 3 0", "3 4 5")]
    for n, m, wmax in ((10, 20, 10), (300, 1500, 100), (2000, 6000, 10 ** 6)):
        rows = []
        for i in range(2, n + 1):                       # a connected spine with heavy weights
            rows.append(f"{rng.randint(1, i - 1)} {i} {rng.randint(wmax // 2, wmax)}")
        while len(rows) < m:
            u, v = rng.sample(range(1, n + 1), 2)
            rows.append(f"{u} {v} {rng.randint(0, wmax)}")
        rng.shuffle(rows)
        rows = [" ".join((lambda u, v, w: (v, u, w) if rng.random() < 0.5 else (u, v, w))(*r.split()))
                for r in rows]
        cases.append(lines(f"{n} {len(rows)}", *rows))
    return cases


def gen_edit(rng):
    cases = [lines("a", "a"), lines("abc", "xyz"), lines("kitten", "sitting")]
    for la, lb, alpha in ((10, 12, "ab"), (120, 100, "abcd"), (500, 480, "abcdefghij")):
        a = "".join(rng.choice(alpha) for _ in range(la))
        b = list(a[:lb])
        for _ in range(lb // 5):
            b[rng.randrange(len(b))] = rng.choice(alpha)
        cases.append(lines(a, "".join(b) or "z"))
    return cases


def gen_islands(rng):
    cases = [lines("1 1", "0"), lines("1 1", "1"), lines("3 3", "101", "010", "101")]
    for r, c, p in ((6, 8, 0.4), (40, 50, 0.45), (200, 200, 0.5)):
        cases.append(lines(f"{r} {c}", *("".join("1" if rng.random() < p else "0" for _ in range(c))
                                          for _ in range(r))))
    rows = ["1" * 100] + [("1" + "0" * 98 + "1") for _ in range(98)] + ["1" * 100]
    cases.append(lines("100 100", *rows))
    return cases


def gen_query(rng):
    cases = ["https://a.com/path\n", "https://a.com/?=v&k=#top\n",
             "https://shop.example.com/s?q=" + quote_plus("机械 键盘") + "&page=2&q=" + quote_plus("a+b") + "\n",
             "https://x.io/?token=abc%3D%3D==&redirect=" + quote_plus("https://y.io/?a=1&b=2") + "\n",
             "/search?&&lang=zh-CN&debug&tag=a&tag=b&tag=&sort=price%20desc#frag?x=1\n"]
    words = ["名字", "张三", "x y", "a&b", "100%", "c=d", "hello", "ok"]
    for _ in range(2):
        parts = []
        for i in range(rng.randint(5, 12)):
            key = rng.choice(["id", "name", "from", "utm_source", "k" + str(i), "中文"])
            parts.append(f"{quote_plus(key)}={quote_plus(rng.choice(words))}")
        cases.append("https://m.example.cn/list?" + "&".join(parts) + "\n")
    return cases


def gen_debounce(rng):
    cases = [lines("100 1", "0"), lines("100 3", "0 100 200"), lines("100 4", "0 99 198 297"),
             lines("50 5", "10 10 10 60 200")]
    for wait, n in ((30, 30), (300, 1000)):
        t, ts = 0, []
        for _ in range(n):
            t += rng.choice([0, 1, wait // 2, wait - 1, wait, wait, wait + 1, 3 * wait])
            ts.append(t)
        cases.append(lines(f"{wait} {n}", " ".join(map(str, ts))))
    return cases


def gen_flatten(rng):
    cases = ['{"a": 1}\n', '{"a": {}, "b": [], "c": {"d": []}}\n',
             '{"user": {"name": "张三", "tags": ["admin", "dev"], "age": 30, "vip": false, "boss": null}}\n',
             '{"list": [[1, 2], [], [{"x": "say \\"hi\\""}]], "k": "a\\\\b"}\n']

    def value(depth):
        r = rng.random()
        if depth > 3 or r < 0.4:
            return rng.choice([0, -7, 12345, True, False, None, "", "text", "中文", "a b"])
        if r < 0.7:
            return {f"k{rng.randint(0, 12)}": value(depth + 1) for _ in range(rng.randint(0, 4))}
        return [value(depth + 1) for _ in range(rng.randint(0, 12))]
    for _ in range(3):
        obj = {f"f{i}": value(0) for i in range(rng.randint(3, 8))}
        cases.append(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
    return cases


def gen_semver(rng):
    cases = [lines(1, "1.0"), lines(4, "1.2", "1.2.0", "1.10", "1.9"), lines(3, "0.0.1", "0.1", "0.0.0.9")]
    for n in (30, 500):
        vs = []
        for _ in range(n):
            parts = [str(rng.choice([0, 1, 2, 3, 9, 10, 11, 100])) for _ in range(rng.randint(1, 4))]
            vs.append(".".join(parts))
        cases.append(lines(n, *vs))
    return cases


def gen_password(rng):
    cases = [lines(1, "Abcdef1!"), lines(3, "", "aaaaaaaaaaaaaaaaaaaaaaaaa", " Abcdef1! "),
             lines(4, "Pass  word1!", "PASSWORD123!", "pass@word123", "Ab1!Ab1!Ab1!Ab1!Ab1!")]
    alpha = "abcXYZ0129!@# .&"
    for n in (40, 300):
        rows = []
        for _ in range(n):
            p = "".join(rng.choice(alpha) for _ in range(rng.randint(0, 24)))
            rows.append(p)
        cases.append(lines(n, *rows))
    return cases


def gen_report(rng):
    cases = [lines(1, "api login SKIP 0"), lines(3, "ui a PASS 10", "ui b FAIL 20", "ui c PASS 30")]
    for n, suites in ((30, 3), (500, 12), (5000, 40)):
        rows = [f"suite{rng.randint(1, suites):02d} case{i} {rng.choice(['PASS', 'PASS', 'PASS', 'FAIL', 'SKIP'])} "
                f"{rng.randint(1, 5000)}" for i in range(n)]
        cases.append(lines(n, *rows))
    return cases


def gen_flaky(rng):
    cases = [lines(2, "t1 PASS", "t1 PASS"), lines(4, "a FAIL", "a FAIL", "b PASS", "b FAIL"),
             lines(6, "x PASS", "x FAIL", "y FAIL", "y PASS", "z FAIL", "z FAIL")]
    for n, names in ((50, 8), (2000, 150)):
        rows = []
        biases = {}
        for _ in range(n):
            name = f"test_{rng.randint(1, names)}"
            bias = biases.setdefault(name, rng.choice([0.0, 0.2, 0.4, 0.5, 1.0]))
            rows.append(f"{name} {'FAIL' if rng.random() < bias else 'PASS'}")
        cases.append(lines(n, *rows))
    return cases


def gen_ipv4(rng):
    cases = [lines(1, "0.0.0.0"), lines(6, "255.255.255.255", "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..3.4"),
             lines(6, " 1.2.3.4", "1.2.3.4 ", "1.2.3.-4", "a.b.c.d", "1.2.3.4\t", "١.2.3.4"),
             lines(4, "", "...", "10.0.0.1", "192.168.001.1")]
    for n in (50, 300):
        rows = []
        for _ in range(n):
            parts = [rng.choice(["0", "1", "09", "255", "256", "99", "100", "001", "", " 1", "1a", "300", "249"])
                     for _ in range(rng.choice([3, 4, 4, 4, 5]))]
            rows.append(".".join(parts))
        cases.append(lines(n, *rows))
    return cases


def gen_retention(rng):
    cases = [lines(1, "u1 5"), lines(5, "a 2", "a 1", "b 2", "b 4", "c 3"), lines(4, "x 1", "x 1", "x 2", "y 2")]
    for n, users, days in ((40, 10, 7), (1000, 200, 30), (5000, 800, 60)):
        rows = []
        for _ in range(n):
            rows.append(f"u{rng.randint(1, users)} {rng.randint(1, days)}")
        cases.append(lines(n, *rows))
    return cases


def gen_funnel(rng):
    cases = [lines("view", 1, "a view 1"),
             lines("view cart pay", 5, "a pay 1", "a view 2", "a cart 3", "b view 5", "b cart 5"),
             lines("view cart order pay", 3, "u1 view 1", "u1 search 2", "u2 cart 3")]
    steps = ["view", "cart", "order", "pay"]
    for n, users in ((40, 10), (3000, 400), (6000, 900)):
        rows = []
        for _ in range(n):
            step = rng.choice(steps + ["share"])
            rows.append(f"u{rng.randint(1, users)} {step} {rng.randint(0, 100)}")
        cases.append(lines(" ".join(steps), n, *rows))
    return cases


def gen_ab(rng):
    cases = [lines(2, "u1 A 1", "u2 B 1"), lines(4, "a A 0", "a A 1", "b B 0", "c B 1"),
             lines(6, "x A 1", "y A 0", "z A 0", "p B 1", "q B 0", "r B 0")]
    for n, users, pa, pb in ((60, 20, 0.3, 0.5), (3000, 900, 0.12, 0.11), (5000, 1500, 0.2, 0.2)):
        group = {}
        rows = []
        for _ in range(n):
            u = f"user{rng.randint(1, users)}"
            g = group.setdefault(u, rng.choice("AB"))
            rows.append(f"{u} {g} {1 if rng.random() < (pa if g == 'A' else pb) else 0}")
        for g in "AB":     # both groups present
            rows.append(f"only{g} {g} 0")
        cases.append(lines(len(rows), *rows))
    return cases


def gen_sticky(rng):
    cases = [lines("1 1", "a 1"), lines("7 4", "a 1", "a 1", "a 2", "b 7"), lines("30 3", "x 1", "y 1", "z 30")]
    for days, n, users in ((7, 50, 10), (30, 3000, 400), (30, 6000, 500)):
        rows = [f"u{rng.randint(1, users)} {rng.randint(1, days)}" for _ in range(n)]
        cases.append(lines(f"{days} {n}", *rows))
    return cases


# --- the problems ----------------------------------------------------------------------------------
P = []


def problem(position, pid, title, difficulty, tags, description, input_format, output_format, examples, gen,
            **extra):
    P.append({"position": position, "id": pid, "title": title, "difficulty": difficulty, "tags": tags,
              "description": description, "input_format": input_format, "output_format": output_format,
              "examples": examples, "gen": gen, **extra})


problem("backend", "backend-lru-cache", "LRU 缓存", "中等", ["redis", "cache", "缓存", "memcached", "java"],
        "实现一个容量为 capacity 的 LRU（最近最少使用）缓存，依次执行 n 个操作：\n"
        "- put k v：写入键 k 的值 v；若 k 已存在则更新值。写入后若缓存中的键数超过 capacity，淘汰最久未被使用的键。\n"
        "- get k：读取键 k 的值，不存在输出 -1。\n"
        "put 和成功的 get 都算作对该键的一次“使用”。要求每个操作平均 O(1)。",
        "第一行两个整数 capacity n（1 ≤ capacity ≤ 1000，1 ≤ n ≤ 10^5）；接下来 n 行，每行一个操作 put k v 或 get k（k、v 为 1..10^9 的整数）。",
        "对每个 get 操作输出一行结果。",
        [{"input": lines("2 7", "put 1 1", "put 2 2", "get 1", "put 3 3", "get 2", "get 3", "get 1"),
          "explanation": "get 1 之后键 1 变为最近使用，放入 3 时淘汰键 2。"},
         {"input": lines("1 4", "put 5 50", "get 5", "put 6 60", "get 5")}], gen_lru)

problem("backend", "backend-rate-limiter", "滑动窗口限流", "中等",
        ["限流", "gateway", "网关", "nginx", "微服务", "spring cloud", "高并发"],
        "为 API 网关实现按用户的滑动窗口限流：同一用户在任意长度为 W 秒的窗口 (t-W, t] 内最多放行 K 个请求。\n"
        "请求按时间顺序到达。对时间 t 的请求，若该用户在 (t-W, t] 内已被放行的请求数小于 K，则放行（ALLOW）并计入窗口，"
        "否则拒绝（DENY）；被拒绝的请求不计入窗口。",
        "第一行三个整数 W K n（1 ≤ W ≤ 10^6，1 ≤ K ≤ 1000，1 ≤ n ≤ 10^5）；接下来 n 行，每行 t user，t 为非递减的整数秒，user 为不含空格的用户标识。",
        "n 行，每行 ALLOW 或 DENY。",
        [{"input": lines("10 2 5", "1 alice", "2 alice", "3 alice", "11 alice", "3 bob"),
          "explanation": "t=3 时 alice 在 (-7,3] 内已放行 2 个，拒绝；t=11 时窗口 (1,11] 只剩 t=2 的一个，放行。"},
         {"input": lines("5 1 4", "0 u", "4 u", "5 u", "5 u")}], gen_rate)

problem("backend", "backend-service-order", "微服务启动顺序", "中等",
        ["docker", "kubernetes", "k8s", "微服务", "依赖", "spring", "go"],
        "系统中有 n 个服务，编号 1..n，以及 m 条依赖关系“a 依赖 b”，表示 b 必须先于 a 启动。"
        "请给出一个启动顺序：每一步都在所有依赖已启动的服务中选择编号最小的一个启动。若依赖中存在环、无法全部启动，输出 IMPOSSIBLE。",
        "第一行两个整数 n m（1 ≤ n ≤ 10^4，0 ≤ m ≤ 10^5）；接下来 m 行，每行两个整数 a b（a ≠ b，不会重复）。",
        "一行，用空格分隔的启动顺序；或 IMPOSSIBLE。",
        [{"input": lines("4 3", "2 1", "3 1", "4 2"), "explanation": "1 无依赖先启动，之后 2、3 都可启动，选编号小的 2，再 3，最后 4。"},
         {"input": lines("2 2", "1 2", "2 1")}], gen_service)

problem("backend", "backend-meeting-rooms", "会议室预订", "中等",
        ["mysql", "数据库", "预订", "调度", "排期", "sql"],
        "会议预订系统收到 n 个会议的时间段 [s, e)（左闭右开：一个会议在 e 时刻结束，另一个会议可以在同一时刻 e 开始，使用同一间会议室）。"
        "求最少需要多少间会议室才能安排下全部会议。",
        "第一行一个整数 n（1 ≤ n ≤ 10^5）；接下来 n 行，每行两个整数 s e（0 ≤ s < e ≤ 10^9）。",
        "一个整数，最少会议室数。",
        [{"input": lines("3", "0 30", "5 10", "15 20"), "explanation": "[0,30) 与另外两个都重叠，但 [5,10) 与 [15,20) 不重叠，需要 2 间。"},
         {"input": lines("2", "1 5", "5 8")}], gen_rooms)

problem("algo", "algo-lis", "最长严格递增子序列", "中等偏难", ["动态规划", "dp", "二分", "算法", "c++", "acm"],
        "给定长度为 n 的整数序列，求其最长严格递增子序列的长度（子序列不要求连续）。n 最大 10^5，需要 O(n log n) 的解法。",
        "第一行一个整数 n（1 ≤ n ≤ 10^5）；第二行 n 个整数（绝对值不超过 10^9）。",
        "一个整数，最长严格递增子序列的长度。",
        [{"input": lines(8, "10 9 2 5 3 7 101 18"), "explanation": "例如 2 3 7 18，长度 4。"},
         {"input": lines(6, "0 1 0 3 2 3")}], gen_lis)

problem("algo", "algo-dijkstra", "最短路径", "中等偏难", ["图", "graph", "最短路", "dijkstra", "算法", "推荐", "地图"],
        "有 n 个城市（编号 1..n）和 m 条双向道路，每条道路连接 u、v，长度为 w（w ≥ 0）。求从城市 1 到城市 n 的最短距离；不可达输出 -1。",
        "第一行两个整数 n m（1 ≤ n ≤ 10^4，0 ≤ m ≤ 10^5）；接下来 m 行，每行三个整数 u v w（0 ≤ w ≤ 10^6，可能有重边）。",
        "一个整数，最短距离或 -1。",
        [{"input": lines("4 5", "1 2 4", "1 3 1", "3 2 2", "2 4 5", "3 4 9"), "explanation": "1→3→2→4，距离 1+2+5=8。"},
         {"input": lines("3 1", "2 3 7")}], gen_dijkstra)

problem("algo", "algo-edit-distance", "编辑距离", "中等偏难", ["nlp", "动态规划", "dp", "文本", "字符串", "算法"],
        "给定两个字符串 a、b，每次操作可以插入一个字符、删除一个字符或替换一个字符，求把 a 变成 b 的最少操作次数。",
        "两行，分别为字符串 a 和 b（仅含小写字母，长度 1..1000）。",
        "一个整数，最少操作次数。",
        [{"input": lines("horse", "ros"), "explanation": "horse → rorse（替换）→ rose（删除）→ ros（删除），共 3 次。"},
         {"input": lines("intention", "execution")}], gen_edit)

problem("algo", "algo-islands", "岛屿数量", "中等", ["bfs", "dfs", "图像", "cv", "opencv", "计算机视觉", "算法"],
        "给定 r 行 c 列的 0/1 网格，1 表示陆地，0 表示水。上下左右相邻的陆地属于同一座岛屿（对角线不相连）。求岛屿数量。"
        "网格最大 1000×1000，注意递归深度。",
        "第一行两个整数 r c（1 ≤ r, c ≤ 1000）；接下来 r 行，每行一个长度为 c 的 0/1 字符串。",
        "一个整数，岛屿数量。",
        [{"input": lines("4 5", "11000", "11000", "00100", "00011")}, {"input": lines("3 3", "010", "101", "010"),
                                                                       "explanation": "四块陆地两两只在对角线相接，算 4 座岛屿。"}],
        gen_islands)

problem("frontend", "fe-query-string", "解析 URL 查询参数", "简单", ["javascript", "url", "vue", "react", "浏览器", "前端"],
        "实现前端常用的查询串解析：给定一个 URL，解析“?”之后、“#”之前的查询串。参数之间以 & 分隔，空片段忽略；"
        "每个参数在第一个 = 处分成键和值（没有 = 时值为空串）；键和值都要做 URL 解码：+ 表示空格，%XX 为 UTF-8 字节的百分号编码。"
        "同名参数的值按出现顺序用英文逗号连接。按键的字典序（按字符编码）输出；没有任何参数时输出 (empty)。",
        "一行，一个 URL（长度不超过 2000，其中的百分号编码都合法）。",
        "每个参数一行，格式为 键=值。",
        [{"input": "https://example.com/search?q=%E6%89%8B%E6%9C%BA+%E5%A3%B3&page=2&tag=a&tag=b#top\n",
          "explanation": "q 解码为“手机 壳”，tag 出现两次，值为 a,b。"},
         {"input": "https://example.com/index.html\n"}], gen_query)

problem("frontend", "fe-debounce", "防抖函数的触发时刻", "简单", ["javascript", "typescript", "react", "vue", "性能优化", "前端"],
        "前端的防抖（debounce，尾触发）：每次事件都会取消之前的定时器并重新开始计时 wait 毫秒，定时器到期时函数执行一次。"
        "若某个事件恰好发生在定时器到期的同一时刻，认为定时器先到期、函数先执行，然后该事件再开始新的计时。"
        "给定 wait 和所有事件发生的时刻，求函数每次执行的时刻。",
        "第一行两个整数 wait n（1 ≤ wait ≤ 10^6，1 ≤ n ≤ 10^5）；第二行 n 个非递减的整数，事件时刻（毫秒）。",
        "一行，用空格分隔的函数执行时刻，按时间先后。",
        [{"input": lines("100 5", "0 50 120 300 400"), "explanation": "0 和 50 的定时器都被下一个事件取消；120 的在 220 执行；300 的定时器在 400 到期，与 400 的事件同一时刻，先执行；400 的在 500 执行。"},
         {"input": lines("10 3", "0 10 20")}], gen_debounce)

problem("frontend", "fe-flatten-object", "扁平化 JSON 对象", "中等", ["javascript", "json", "typescript", "状态管理", "redux", "前端"],
        "把一个嵌套的 JSON 对象扁平化：对象的键用 . 连接成路径，数组元素以下标作为路径的一段（如 a.0.b）。"
        "叶子值为字符串、整数、true、false、null，以及空对象 {} 和空数组 []（它们本身作为叶子）。"
        "每个叶子输出一行“路径=值”，值以紧凑 JSON 形式书写（字符串带双引号、按 JSON 规则转义，非 ASCII 字符原样输出）。"
        "按路径的字典序（按字符编码）输出。",
        "一个 JSON 对象（可能跨多行，键只含字母、数字和下划线，顶层非空，没有重复键，数字都是整数）。",
        "每个叶子一行。",
        [{"input": '{"a": {"b": 1, "c": [true, null]}, "d": "你好"}\n'},
         {"input": '{"x": [], "y": {"z": {}}, "n": [[0]]}\n', "explanation": "空数组与空对象作为叶子输出。"}],
        gen_flatten)

problem("frontend", "fe-semver-sort", "版本号排序", "简单", ["npm", "webpack", "node", "前端工程化", "javascript"],
        "前端工程里经常需要比较依赖的版本号。版本号由 1 到 4 段非负整数以 . 连接而成（不含前导零）。比较规则：逐段按数值比较，"
        "段数不同时缺少的段视为 0（因此 1.2 与 1.2.0 相等）。请将 n 个版本号按从小到大排序，相等的版本号保持输入中的先后顺序。",
        "第一行一个整数 n（1 ≤ n ≤ 10^4）；接下来 n 行，每行一个版本号。",
        "n 行，排序后的版本号（保持原样书写）。",
        [{"input": lines(5, "1.10.0", "1.2", "1.9.3", "1.2.0", "0.9"), "explanation": "1.2 与 1.2.0 相等，保持原顺序。"},
         {"input": lines(3, "2", "10", "2.0.0.1")}], gen_semver)

problem("qa", "qa-password-rules", "密码强度校验", "简单", ["测试", "功能测试", "表单", "selenium", "边界值", "qa"],
        "为注册表单的密码校验写出判定程序。规则（编号固定）：\n"
        "R1 长度在 8 到 20 之间（含）；R2 至少一个大写字母 A-Z；R3 至少一个小写字母 a-z；R4 至少一个数字 0-9；"
        "R5 至少一个特殊字符（!@#$%^&* 之一）；R6 不含空格；R7 不含连续 3 个相同的字符。\n"
        "对每个密码，全部满足输出 OK，否则按编号顺序输出所有未满足的规则，用英文逗号分隔。"
        "注意：密码按整行读取，行首行尾的空格也是密码的一部分（只去掉行尾换行符）。",
        "第一行一个整数 n（1 ≤ n ≤ 1000）；接下来 n 行，每行一个密码（可打印 ASCII，可能为空行）。",
        "n 行，每行 OK 或规则编号列表。",
        [{"input": lines(3, "Abcdef1!", "abc", "Aaa111!!xyz"), "explanation": "abc 不满足 R1,R2,R4,R5；Aaa111!!xyz 含 111，不满足 R7。"},
         {"input": lines(2, "Hello World1!", "ABCDEFGH12")}], gen_password)

problem("qa", "qa-test-report", "测试报告汇总", "简单", ["测试", "自动化测试", "pytest", "junit", "jenkins", "ci", "qa"],
        "CI 跑完自动化用例后需要出一份汇总。每条结果包含所属套件、用例名、状态（PASS/FAIL/SKIP）和耗时。"
        "请按套件名字典序，为每个套件输出：套件名 总数 通过数 失败数 跳过数 通过率；最后一行以 TOTAL 为名输出全部用例的汇总。"
        "通过率 = 通过数 ×100 ÷ (通过数 + 失败数)，向下取整后加 %；跳过的用例不计入分母；分母为 0 时通过率写 N/A。",
        "第一行一个整数 n（1 ≤ n ≤ 10^5）；接下来 n 行，每行 suite case status duration_ms（均不含空格）。",
        "每个套件一行，最后一行 TOTAL。",
        [{"input": lines(5, "login t1 PASS 120", "login t2 FAIL 300", "pay t1 PASS 80", "pay t2 SKIP 0", "login t3 PASS 90")},
         {"input": lines(2, "smoke a SKIP 0", "smoke b SKIP 0")}], gen_report)

problem("qa", "qa-flaky-tests", "找出不稳定用例", "简单", ["测试", "自动化测试", "flaky", "稳定性", "ci", "qa"],
        "同一批用例被重复执行了多次。一个用例如果既有 PASS 又有 FAIL，就是不稳定（flaky）用例；一直失败或一直通过的都不算。"
        "请输出所有不稳定用例，按失败率（失败次数/执行次数）从高到低排序，失败率相同按用例名字典序。没有则输出 NONE。",
        "第一行一个整数 n（1 ≤ n ≤ 10^5）；接下来 n 行，每行 用例名 结果（PASS 或 FAIL）。",
        "每个不稳定用例一行：用例名 失败次数/执行次数；或 NONE。",
        [{"input": lines(7, "login PASS", "login FAIL", "pay FAIL", "pay FAIL", "search PASS", "search FAIL", "search PASS"),
          "explanation": "pay 一直失败，不算；login 失败率 1/2 高于 search 的 1/3。"},
         {"input": lines(2, "a PASS", "b PASS")}], gen_flaky)

problem("qa", "qa-ipv4", "IPv4 地址校验", "简单", ["测试", "网络", "接口测试", "边界值", "等价类", "qa"],
        "写一个 IPv4 地址的校验函数并用它判定每一行输入。合法的 IPv4 地址恰好由 4 段组成，以 . 分隔；每段是 1 到 3 位十进制数字（只允许 0-9），"
        "数值在 0 到 255 之间，且除了 0 本身以外不能有前导零。不允许任何空白字符或其他字符。",
        "第一行一个整数 n（1 ≤ n ≤ 1000）；接下来 n 行，每行一个待校验的字符串（按整行读取，只去掉行尾换行符，可能为空行）。",
        "n 行，每行 YES 或 NO。",
        [{"input": lines(4, "192.168.1.1", "192.168.01.1", "256.0.0.1", "1.2.3")},
         {"input": lines(2, "0.0.0.0", "1.2.3.4 ")}], gen_ipv4)

problem("pm", "pm-next-day-retention", "新用户次日留存", "简单", ["数据分析", "留存", "增长", "sql", "用户运营", "产品经理"],
        "产品经理要看新用户的次日留存。给定用户活跃日志（用户, 第几天），一个用户首次出现的那一天是他的“新增日”。"
        "对每个新增日（按天从小到大），输出：天 新增用户数 次日留存用户数 留存率。次日留存用户指在新增日的下一天也活跃的新用户；"
        "留存率 = 留存数 ×100 ÷ 新增数，向下取整加 %。同一用户同一天可能出现多次，日志不保证按时间排序。",
        "第一行一个整数 n（1 ≤ n ≤ 10^5）；接下来 n 行，每行 user day（day 为 1..365 的整数）。",
        "每个新增日一行。",
        [{"input": lines(6, "a 1", "b 1", "a 2", "c 2", "c 3", "b 3"), "explanation": "第 1 天新增 a、b，只有 a 第 2 天活跃，留存率 50%；第 2 天新增 c，第 3 天活跃。"},
         {"input": lines(3, "x 5", "x 5", "y 4")}], gen_retention)

problem("pm", "pm-funnel", "下单转化漏斗", "中等", ["数据分析", "漏斗", "转化率", "电商", "sql", "产品经理"],
        "给定漏斗的步骤（如 view cart order pay）和用户行为事件（用户, 行为, 时间），计算有序漏斗：用户到达第 i 步，当且仅当他按时间顺序"
        "先后完成了第 1..i 步（时间可以相同；相同时间的事件按步骤顺序处理）。取每个用户最远能到达的步骤（按时间顺序贪心匹配）。"
        "不在漏斗中的行为忽略。输出每一步：步骤名 到达人数 相对上一步的转化率（到达人数×100÷上一步人数 向下取整加 %；第一步写 -，上一步为 0 时写 0%）。",
        "第一行是用空格分隔的漏斗步骤；第二行一个整数 n（1 ≤ n ≤ 10^5）；接下来 n 行，每行 user action time（time 为整数，事件不保证按时间排序）。",
        "每个步骤一行。",
        [{"input": lines("view cart pay", 6, "u1 view 1", "u1 cart 2", "u1 pay 3", "u2 cart 1", "u2 view 2", "u3 view 5"),
          "explanation": "u2 先加购后浏览，只算到达 view。"},
         {"input": lines("view pay", 2, "a pay 1", "b view 1")}], gen_funnel)

problem("pm", "pm-ab-test", "A/B 实验结果", "中等", ["a/b", "ab测试", "实验", "数据分析", "增长", "产品经理"],
        "一次 A/B 实验的日志每行是（用户, 分组, 是否转化 0/1），同一用户可能出现多行（一个用户只属于一个组），只要有一行为 1 就算该用户已转化。"
        "请按用户去重后统计每组：组名 用户数 转化用户数 转化率（转化数×100÷用户数，截断保留两位小数，加 %），先 A 后 B；"
        "最后一行输出转化率更高的组 WINNER A / WINNER B，相等输出 TIE（请用精确比较，不要用浮点数）。",
        "第一行一个整数 n（2 ≤ n ≤ 10^5）；接下来 n 行，每行 user group converted，group 为 A 或 B，两组都至少有一个用户。",
        "三行。",
        [{"input": lines(6, "u1 A 0", "u1 A 1", "u2 A 0", "u3 B 1", "u4 B 0", "u5 B 0"), "explanation": "A 组 2 人 1 人转化（50.00%），B 组 3 人 1 人转化（33.33%）。"},
         {"input": lines(4, "a A 1", "b A 0", "c B 0", "d B 1")}], gen_ab)

problem("pm", "pm-stickiness", "用户粘性 DAU/MAU", "简单", ["数据分析", "dau", "mau", "指标", "用户增长", "产品经理"],
        "给定统计周期天数 D 和活跃日志（用户, 第几天），计算：\n"
        "1. 平均 DAU = 所有“用户-天”去重后的数量 ÷ D；\n2. MAU = 周期内去重用户数；\n3. 粘性 = 平均 DAU ÷ MAU。\n"
        "平均 DAU 截断保留两位小数；粘性以百分比表示，截断保留两位小数加 %（请用整数运算避免浮点误差）。",
        "第一行两个整数 D n（1 ≤ D ≤ 31，1 ≤ n ≤ 10^5）；接下来 n 行，每行 user day（1 ≤ day ≤ D）。",
        "三行：平均 DAU、MAU、粘性。",
        [{"input": lines("3 5", "a 1", "a 2", "b 2", "a 2", "c 3"), "explanation": "去重后 4 个用户-天，平均 DAU=1.33，MAU=3，粘性 4÷(3×3)=44.44%。"},
         {"input": lines("2 2", "x 1", "x 2")}], gen_sticky)


def run_reference(pid: str, stdin: str) -> str:
    proc = subprocess.run([sys.executable, str(HERE / pid / "correct.py")], input=stdin.encode(),
                          capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise SystemExit(f"{pid}: reference failed: {proc.stderr.decode()[-500:]}")
    return proc.stdout.decode()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    by_pos: dict[str, list] = {}
    for spec in P:
        rng = random.Random(spec["id"])
        examples = [dict(ex, output=run_reference(spec["id"], ex["input"])) for ex in spec["examples"]]
        hidden = [{"input": inp, "output": run_reference(spec["id"], inp)} for inp in spec["gen"](rng)]
        item = {k: v for k, v in spec.items() if k not in ("position", "gen", "examples")}
        item["examples"] = examples
        item["hidden"] = hidden
        by_pos.setdefault(spec["position"], []).append(item)
        print(f"{spec['id']}: {len(examples)} examples, {len(hidden)} hidden")
    for pos, items in by_pos.items():
        (OUT / f"{pos}.json").write_text(json.dumps({"position_type": pos, "problems": items},
                                                    ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
