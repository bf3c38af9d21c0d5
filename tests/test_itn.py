"""Inverse text normalisation (core/itn.py): spoken numbers -> one written form, everything else
left alone."""
import random

import pytest

from core.itn import itn, spoken


@pytest.mark.parametrize("said, written", [
    ("从三百毫秒降到了八十毫秒", "从300毫秒降到了80毫秒"),
    ("一共有十二台机器", "一共有12台机器"),
    ("内存是两百五十六个吉字节", "内存是256个吉字节"),
    ("缩短了一点五秒", "缩短了1.5秒"),
    ("提高了百分之六", "提高了6%"),
    ("提升了百分之三点二", "提升了3.2%"),
    ("百分之四十的用户", "40%的用户"),
    ("百分之百", "100%"),
    ("百分之6", "6%"),
    ("二零二二年毕业", "2022年毕业"),
    ("零八年", "08年"),
    ("三万", "3万"),
    ("一千万次请求", "1000万次请求"),
    ("三万五千", "35000"),
    ("十万零五", "100005"),
    ("一百零五个", "105个"),
    ("十个", "10个"),
    ("日活两千万", "日活2000万"),
    # Arabic digits from the recogniser: the same written form
    ("拆成了3个微服务", "拆成了三个微服务"),
    ("拆成了2期", "拆成了两期"),
    ("300毫秒", "300毫秒"),
    ("3万", "3万"),
    ("6%", "6%"),
])
def test_numbers_written_one_way(said, written):
    assert itn(said) == written


@pytest.mark.parametrize("text", [
    "我们一起做的", "一定要有回滚方案", "万一服务挂了", "这个十分重要", "千万不要这样", "快一点",
    "一点儿", "一点点", "几十个", "十几个", "三四个人", "一万多", "百度", "第一", "三个", "两个",
    "一般来说", "一致性哈希", "一些", "一下", "统一", "唯一", "一开始", "三点钟", "五花八门",
    "一边写一边测", "万物互联", "单一职责", "百分比", "十字路口", "七上八下", "一五一十",
])
def test_leaves_non_numbers_alone(text):
    assert itn(text) == text


def test_round_trip_written_spoken_written():
    """itn(spoken(n)) is n's written form, over many numbers (whole, 万, decimals; a lone 十 stays a
    word, see test_leaves_non_numbers_alone and 十个 -> 10个)."""
    rng = random.Random(7)
    numbers = list(range(11, 1000)) + [rng.randrange(1000, 100_000_000) for _ in range(2000)]
    for n in numbers:
        out = itn(spoken(n))
        if n >= 10_000 and n % 10_000 == 0 and (n < 100_000_000):
            assert out == f"{n // 10_000}万", (n, spoken(n), out)
        else:
            assert out == str(n), (n, spoken(n), out)
    for _ in range(300):
        x = f"{rng.randrange(0, 1000)}.{rng.randrange(0, 100):d}"
        if x.endswith(".0"):
            continue
        assert itn(spoken(x)) == x, (x, spoken(x))
        assert itn("百分之" + spoken(x)) == x + "%"


def test_idempotent():
    for text in ("从三百毫秒降到了八十毫秒", "提升了百分之三点二", "二零二二年", "拆成了3个微服务", "一起"):
        assert itn(itn(text)) == itn(text)
