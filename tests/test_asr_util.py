"""Text helpers of the speech plugins: simplified output, Whisper failure-mode guards, CER."""
from plugins._speech_util import (build_prompt, cer, collapse_repetitions, corpus_cer, is_hallucination,
                                  normalize_for_cer, numbers_to_chinese, strip_prompt_echo, strip_prompt_tail,
                                  strip_restart, tidy)


def test_traditional_output_is_normalised_to_simplified():
    assert tidy("面試觀您好,我叫李明。畢業於華中科技大學軟件工程專業。") == \
        "面试观您好，我叫李明。毕业于华中科技大学软件工程专业。"
    assert tidy("在上一個項目裡, 我們的訂單服務") == "在上一个项目里，我们的订单服务"
    # spaces between Chinese characters go, spaces between Latin words stay
    assert tidy("用 Redis 做 緩存 and message queue") == "用Redis做缓存and message queue"


def test_repetition_loops_are_collapsed():
    assert collapse_repetitions("说完了，说完了，说完了，说完了，说完了") == "说完了"
    assert collapse_repetitions("主要负责订单系统和支付系统、支付系统、支付系统、支付系统") == "主要负责订单系统和支付系统"
    assert collapse_repetitions("消息队列主要用来做，消息队列主要用来做，消息") == "消息队列主要用来做，消息"
    assert collapse_repetitions("哈哈哈哈哈哈哈") == "哈"
    # ordinary text is untouched
    for text in ("我们我们先看一下", "是的是的", "数据库的性能优化", "谢谢"):
        assert collapse_repetitions(text) == text


def test_silence_hallucinations_are_recognised():
    assert is_hallucination("请不吝点赞 订阅 转发 打赏支持明镜与点点栏目")
    assert is_hallucination("字幕由Amara.org社区提供")
    assert is_hallucination("謝謝觀看")
    assert is_hallucination("。。")
    assert not is_hallucination("我做过数据库的性能优化")


def test_prompt_echo_is_removed():
    q = "缓存穿透是什么？怎么解决？"
    assert strip_prompt_echo("缓存穿透是什么？怎么解决？", [q]) == ""
    prompt = "缓存穿透是什么？怎么解决？电商、订单系统、支付系统、高并发、数据库、消息队列。"
    assert strip_prompt_echo("订单系统、支付系统、高并发、数据库", [q, prompt]) == ""
    assert strip_prompt_echo("这次是普通话的面试回答。", ["以下是普通话的面试回答。"]) == ""
    # a short phrase that is also in the prompt is what the candidate said
    assert strip_prompt_echo("消息队列", [q, prompt]) == "消息队列"
    assert strip_prompt_echo("缓存穿透是什么", [q, prompt]) == "缓存穿透是什么"
    assert strip_prompt_echo("缓存穿透是什么？怎么解决？可以用布隆过滤器", [q]) == "可以用布隆过滤器"
    assert strip_prompt_echo("可以用布隆过滤器", [q]) == "可以用布隆过滤器"


def test_prompt_from_context():
    assert build_prompt("介绍一下你自己", ["Redis", "redis", "订单系统"], "默认") == "介绍一下你自己。Redis、订单系统。"
    assert build_prompt("", [], "默认") == "默认"
    # question, terms, then the hints (at most a third, cut at the end); over the limit the first
    # terms go
    p = build_prompt("什么是缓存穿透？", ["Redis", "Kafka", "订单系统"], "默认", max_chars=30,
                     hints=["可用布隆过滤器或缓存空值", "热点 key 用互斥锁"])
    assert p == "什么是缓存穿透？Kafka、订单系统。可用布隆过滤器或缓存"


def test_cer_and_normalisation():
    assert numbers_to_chinese("降低到了50毫秒") == "降低到了五十毫秒"
    assert numbers_to_chinese("3.5秒，105个") == "三点五秒，一百零五个"
    assert normalize_for_cer("平均響應時間：50毫秒！") == "平均响应时间50毫秒"
    assert normalize_for_cer("平均响应时间五十毫秒。") == normalize_for_cer("平均响应时间50毫秒")
    assert normalize_for_cer("提高了百分之六") == normalize_for_cer("提高了6%") == "提高了6"
    assert cer("面试官您好", "面试官您好。") == 0.0
    assert abs(cer("面试观您好", "面试官您好") - 0.2) < 1e-9
    assert cer("", "是的") == 1.0
    assert corpus_cer([("是等", "是的。"), ("说完了", "说完了。")]) == 1 / 5


def test_a_restart_at_the_end_is_cut():
    assert strip_restart("主要负责订单系统和支付系统主要负") == "主要负责订单系统和支付系统"
    assert strip_restart("主要负责订单系统，和支付系统。主要负责") == "主要负责订单系统，和支付系统"
    # real speech is left alone: short texts, two-character echoes, no repeat
    assert strip_restart("好的好的") == "好的好的"
    assert strip_restart("我们先做了分库，后来我们") == "我们先做了分库，后来我们"
    assert strip_restart("说完了说完了") == "说完了说完了"
    assert strip_restart("缓存穿透可以用布隆过滤器") == "缓存穿透可以用布隆过滤器"
    # a long restart after a sentence end (seen on slowed speech): the whole beginning again
    assert strip_restart("接口的平均响应时间从三百毫秒降到了八十毫秒左右。接口的平均响应时间从三百毫秒降到了八十") \
        == "接口的平均响应时间从三百毫秒降到了八十毫秒左右。"
    assert strip_restart("先讲背景。再讲方案。先讲背景和目标") == "先讲背景。再讲方案。先讲背景和目标"   # not a prefix
    assert strip_restart("我说完了。我说完了") == "我说完了。我说完了"                           # short
    assert strip_restart("我负责订单系统。我负责订单系统的接口") == "我负责订单系统。我负责订单系统的接口"


def test_a_tail_of_prompt_words_after_the_answer_is_cut():
    prompt = "Django ORM 的 N+1 查询问题是什么？select_related 使用 SQL JOIN。"
    assert strip_prompt_tail("我们用它处理订单超时？select.com?select.", prompt) == "我们用它处理订单超时？"
    # English the candidate said is kept: inside the sentence, not from the prompt, or no Chinese
    assert strip_prompt_tail("我们用select_related。", prompt) == "我们用select_related。"
    assert strip_prompt_tail("用过Redis。Kafka.", prompt) == "用过Redis。Kafka."
    assert strip_prompt_tail("select.", prompt) == "select."
