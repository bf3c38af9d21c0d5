"""A rule-based parser for Chinese resumes: text in, the API's resume fields out, no model needed.

Steps: normalise (NFKC: full-width colons, spaces and digits become ASCII; bullets and Markdown marks
go), cut the text into sections at headings (教育经历 / 工作经历 / 项目经历 / 专业技能 / 自我评价 and
their common variants, also "教育经历 | …" table rows), read the header (name, 求职意向), split
education / work / project sections into entries at date ranges (2016.09 - 2020.06, 2016年9月至今,
2019/03–2021/07 …), pick schools, degrees and majors, companies and titles, project names, roles and
tech stacks from each entry's first lines and its "label: value" lines, and match skills against the
question bank's vocabulary (plugins/question_bank/aliases.json and the question topics).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from core.resume import skill_terms

# --- headings -------------------------------------------------------------------------------------
HEADINGS = {
    "education": ["教育经历", "教育背景", "教育经验", "学习经历", "教育信息", "学历背景", "学历", "教育"],
    "work": ["工作经历", "工作经验", "实习经历", "实习经验", "工作履历", "职业经历", "任职经历", "工作实习经历",
             "实习与工作经历", "工作"],
    "projects": ["项目经历", "项目经验", "项目实践", "项目履历", "主要项目", "参与项目", "项目"],
    "skills": ["专业技能", "技能特长", "个人技能", "技术技能", "技能清单", "专业能力", "技术能力", "掌握技能",
               "技术栈", "技能"],
    "self_evaluation": ["自我评价", "个人评价", "自我介绍", "个人简介", "个人总结", "自我描述", "个人优势", "关于我"],
    "basic": ["基本信息", "个人信息", "联系方式", "个人资料"],
    "intention": ["求职意向", "求职目标", "期望工作"],
    "other": ["获奖情况", "获奖经历", "荣誉奖项", "荣誉证书", "证书", "资格证书", "兴趣爱好", "校园经历",
              "社会实践", "语言能力", "培训经历", "论文发表", "其他信息", "附加信息"],
}
ENGLISH_HEADINGS = {
    "education": ["education", "educational background", "education background"],
    "work": ["work experience", "experience", "professional experience", "employment history",
             "work history", "internship experience", "internships"],
    "projects": ["projects", "project experience", "selected projects"],
    "skills": ["skills", "technical skills", "skills & tools"],
    "self_evaluation": ["summary", "self evaluation", "about me", "profile"],
    "other": ["awards", "honors", "certificates", "certifications", "interests", "languages"],
}
_HEADING_OF = {v: k for k, vs in (*HEADINGS.items(), *ENGLISH_HEADINGS.items()) for v in vs}
_DECOR_LEAD = re.compile(r"^[#>*\s【\[(■●◆◇▌▍|/\\_=~\-—·•]*(?:[一二三四五六七八九十]+[、.]|\d{1,2}[、.)])?\s*")
_DECOR_TAIL = re.compile(r"[\s】\])*#:：=_\-—|/\\]*$")
_ENGLISH_TAIL = re.compile(r"\s*[A-Za-z][A-Za-z &/]*$")

# --- dates ---------------------------------------------------------------------------------------
_D = r"(?:19|20)\d{2}(?:\s*[./\-年]\s*(?:1[0-2]|0?[1-9])(?!\d)\s*月?)?(?:\s*年)?"
_NOW = r"至今|今|现在|目前|present|now"
DATE_RANGE = re.compile(rf"({_D})\s*(?:-|–|—|~|至|到|－)+\s*({_D}|{_NOW})", re.I)
SINGLE_DATE = re.compile(rf"(?<!\d)({_D})(?!\d)")

# --- entry fields ---------------------------------------------------------------------------------
SCHOOL = re.compile(r"(?:[\u4e00-\u9fffA-Za-z()（）]|(?<=[A-Za-z]) (?=[A-Za-z])){2,40}?(?:大学|学院|学校|中学|研究生院|研究院|研究所|"
                    r"University|College|Institute|School)(?:[(（][^)）]{1,12}[)）])?")
DEGREES = ["博士研究生", "硕士研究生", "博士", "硕士", "研究生", "本科", "学士", "大专", "专科", "高中", "中专",
           "MBA", "EMBA", "PhD", "Ph.D", "Master", "Bachelor"]
COMPANY = re.compile(r"(?:公司|集团|科技|网络|银行|研究院|研究所|工作室|事务所|中心|有限|股份|实验室|"
                     r"Inc\.?|Ltd\.?|Co\.?|Corp\.?|LLC|Technologies|Technology)(?:[(（][^)）]{1,12}[)）])?$", re.I)
TITLE_WORDS = re.compile(r"(?:工程师|开发|程序员|架构师|经理|主管|总监|专员|实习生|实习|助理|分析师|设计师|"
                         r"运营|测试|产品|研究员|顾问|负责人|组长|leader|engineer|developer|manager|intern)",
                         re.I)
ROLE_WORDS = re.compile(r"(?:负责人|开发|工程师|组长|成员|架构师|经理|owner|leader|主程|主导|核心|独立|设计)", re.I)

KEYS = {
    "name": ["姓名", "名字"],
    "expected_position": ["求职意向", "期望职位", "意向岗位", "应聘岗位", "应聘职位", "目标职位", "期望岗位",
                          "意向职位", "求职岗位", "求职方向"],
    "school": ["学校", "毕业院校", "院校", "毕业学校"],
    "major": ["专业", "所学专业"],
    "degree": ["学历", "学位"],
    "company": ["公司", "公司名称", "单位", "工作单位", "任职公司"],
    "position": ["职位", "岗位", "职务", "担任职位", "工作岗位"],
    "project_name": ["项目名称", "项目名"],
    "role": ["担任角色", "项目角色", "角色", "本人角色", "我的角色", "担任职务"],
    "tech_stack": ["技术栈", "使用技术", "技术架构", "开发技术", "相关技术", "开发环境", "技术选型", "技术"],
    "description": ["项目描述", "项目简介", "项目内容", "项目介绍", "工作内容", "工作职责", "主要工作", "职责描述",
                    "负责内容", "描述", "职责", "业绩", "主要职责"],
    "period": ["时间", "在校时间", "起止时间", "工作时间", "项目时间", "时间段"],
}
_KEY_OF = {label: key for key, labels in KEYS.items() for label in labels}
_KV = re.compile(r"^\s*(" + "|".join(sorted(map(re.escape, _KEY_OF), key=len, reverse=True))
                 + r")\s*(?::|\|)\s*(.*)$")
_KV_SPACE = re.compile(r"^\s*(" + "|".join(sorted(map(re.escape, _KEY_OF), key=len, reverse=True))
                       + r")\s+(\S.*)$")
_NEXT_LABEL = re.compile(r"\s+(?=(?:" + "|".join(sorted(map(re.escape, _KEY_OF), key=len, reverse=True))
                         + r"|电话|手机|邮箱|微信)(?:\s|:|$))")
_KV_ANY = re.compile(r"(" + "|".join(sorted(map(re.escape, _KEY_OF), key=len, reverse=True))
                     + r")\s*:\s*")
_BULLET = re.compile(r"^\s*(?:[-*+•·●○▪■◆◇►▶✓√]|\d{1,2}\s*[、.)）](?!\d)|[(（]\d{1,2}[)）])\s*")
_SPLIT = re.compile(r"\s*\|\s*|\t+|\s{2,}|(?<=[\u4e00-\u9fff)）])\s+(?=\S)|(?<=\S)\s+(?=[\u4e00-\u9fff(（])"
                    r"|\s+/\s+|\s*·\s*")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_CONTACT = re.compile(r"(?:电话|手机|邮箱|e-?mail|微信|wechat|qq|github|地址|出生|年龄|性别|籍贯|民族|政治面貌|"
                      r"现居|所在地|期望城市|期望薪资|工作年限|到岗时间|@|1[3-9]\d{9})", re.I)
SURNAMES = set("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
               "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武"
               "戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮"
               "柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古"
               "吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫"
               "寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝")
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
                     "夏侯", "轩辕", "令狐", "端木", "独孤", "南宫", "西门")
_NOT_NAMES = {"个人简历", "简历", "求职简历", "个人信息", "基本信息"}


# Full-width letters, digits, colons, bars, dashes and spaces become ASCII; Chinese punctuation of
# running text (，。；！？（）) stays as written, since it ends up in the draft.
_WIDTH = {c: chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F) if chr(c) not in "，；！？（）"}
_WIDTH.update({0x3000: " ", 0x2002: " ", 0x2003: " ", 0x2009: " ", 0x00A0: " ", 0x200B: "", 0xFEFF: ""})


MAX_LINE = 300


def normalise(text: str) -> list[str]:
    text = unicodedata.normalize("NFC", text).translate(_WIDTH).replace("\r\n", "\n").replace("\r", "\n")
    lines = []
    for raw in text.split("\n"):
        line = raw.strip()
        line = re.sub(r"\*\*|__|`", "", line)
        line = re.sub(r"^#{1,6}\s*", "", line)
        line = re.sub(r"^\|(.*)\|$", r"\1", line).strip()          # Markdown table row
        if re.fullmatch(r"[-:|\s=_*]+", line or "-"):               # rules, table separators, empty
            continue
        # no resume line is this long; cutting bounds the cost of every pattern on hostile text
        lines += [line[i:i + MAX_LINE] for i in range(0, len(line), MAX_LINE)]
    return lines


def heading_of(line: str) -> tuple[str | None, str]:
    """(section, rest of the line) when the line is a section heading, else (None, line)."""
    core = _DECOR_TAIL.sub("", _DECOR_LEAD.sub("", line)).strip()
    bare = _ENGLISH_TAIL.sub("", core).strip() if _CJK.search(core) else core.lower()
    if bare in _HEADING_OF and len(bare) <= 24:
        return _HEADING_OF[bare], ""
    m = re.match(r"^[【\[]?\s*([\u4e00-\u9fff]{4,8})\s*[】\]]?\s*(?:[A-Za-z ]+)?\s*(?::|\|)\s*(.+)$", core)
    if m and m.group(1) in _HEADING_OF and len(m.group(1)) >= 4:
        section = _HEADING_OF[m.group(1)]
        return section, m.group(2).strip()
    return None, line


@dataclass
class Entry:
    header: list[str] = field(default_factory=list)
    description: list[str] = field(default_factory=list)
    pairs: dict = field(default_factory=dict)
    period: tuple[str, str] | None = None
    date_first: bool = False

    def empty(self) -> bool:
        return not (self.header or self.description or self.pairs)


def norm_date(value: str) -> str:
    value = value.strip()
    if re.fullmatch(_NOW, value, re.I):
        return "至今"
    m = re.match(r"((?:19|20)\d{2})(?:\s*[./\-年]\s*(\d{1,2}))?", value)
    if not m:
        return value
    return f"{m.group(1)}.{int(m.group(2)):02d}" if m.group(2) else m.group(1)


def _tokens(line: str) -> list[str]:
    return [t.strip(" ,，;；:") for t in _SPLIT.split(line) if t and t.strip(" ,，;；:")]


def _is_description(line: str) -> bool:
    if _BULLET.match(line):
        return True
    if _KV.match(line):
        return False
    plain = DATE_RANGE.sub("", line)
    cjk = len(_CJK.findall(plain))
    width = cjk + (len(plain) - cjk) / 2          # Latin text takes about twice the characters
    return width > 45 or bool(re.search(r"[。；;，,]\s*\S", plain)) or plain.endswith("。")


def _kv_pairs(line: str) -> list[tuple[str, str]]:
    """``项目名称: X 角色: Y`` -> [(project_name, X), (role, Y)]; [] when the line is no label line."""
    m = _KV.match(line)
    if not m:
        # a table row printed with spaces between its cells: "项目名称 鲸选电商订单中台"
        m = _KV_SPACE.match(line)
        if m and len(m.group(1)) >= 2 and not _is_label_row(line):
            return [(_KEY_OF[m.group(1)], m.group(2).strip())]
        return []
    marks = list(_KV_ANY.finditer(line))
    if not marks or marks[0].start() != m.start(1):
        return [(_KEY_OF[m.group(1)], m.group(2).strip())]
    out = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(line)
        out.append((_KEY_OF[mark.group(1)], line[mark.end():end].strip(" |,，;；")))
    return out


_LABELS = set(_KEY_OF) | {"学校名称", "公司名称", "起止时间", "时间"}


def _is_label_row(line: str) -> bool:
    """A table's header row: every cell a known label (时间 | 学校 | 专业 | 学历)."""
    tokens = _tokens(line)
    return len(tokens) >= 2 and all(t in _LABELS for t in tokens)


def split_entries(lines: list[str]) -> list[Entry]:
    entries: list[Entry] = []
    cur = Entry()
    for line in lines:
        if _is_label_row(line):
            continue
        period = DATE_RANGE.search(line)
        if period and _BULLET.match(line):
            bare = _BULLET.sub("", line)
            if len(bare) <= 60 and not re.search(r"[。；;，,]", bare):
                line = bare                             # "- 2014.09 - 2018.06 四川大学 …": an entry's head
                period = DATE_RANGE.search(line)
        pairs = _kv_pairs(line)
        if pairs and all(k == "period" for k, _ in pairs) and period:
            pairs = []                                  # "时间 | 2016.09 - 2020.06": a date line
        is_desc = not pairs and _is_description(line)
        starts = False
        if period and not is_desc:
            starts = cur.period is not None or bool(cur.description)
            if not starts and cur.header and not cur.date_first and cur.description:
                starts = True
        elif pairs and any(k in ("project_name", "school", "company") for k, _ in pairs):
            starts = any(k in cur.pairs for k, _ in pairs if k in ("project_name", "school", "company")) \
                or (bool(cur.description) and bool(cur.header or cur.pairs))
        elif not is_desc and not pairs:
            # a header line after the entry's description, or after a date that closed its header
            starts = bool(cur.description) or (cur.period is not None and not cur.date_first
                                               and bool(cur.header))
        if starts and not cur.empty():
            entries.append(cur)
            cur = Entry()
        if pairs:
            for key, value in pairs:
                if key == "description":
                    if value:
                        cur.description.append(value)
                elif key == "period":
                    m = DATE_RANGE.search(value)
                    if m:
                        cur.period = (norm_date(m.group(1)), norm_date(m.group(2)))
                        cur.date_first = cur.date_first or not cur.header
                elif value:
                    cur.pairs.setdefault(key, value)
            continue
        if is_desc:
            cur.description.append(_BULLET.sub("", line).strip())
            continue
        if period:
            if cur.period is None:
                cur.period = (norm_date(period.group(1)), norm_date(period.group(2)))
                cur.date_first = not cur.header and not cur.pairs
            rest = (line[:period.start()] + "  " + line[period.end():]).strip(" |")
            rest = re.sub(r"[(（\[【]\s*[)）\]】]", "  ", rest).strip(" |")     # "名称（2020.03-2021.06）"
            if rest and rest not in _LABELS:
                cur.header.append(rest)
        else:
            cur.header.append(line)
    if not cur.empty():
        entries.append(cur)
    return entries


def _header_tokens(entry: Entry) -> list[str]:
    out = []
    for line in entry.header:
        out += [t for t in _tokens(line) if not re.fullmatch(r"[\d\s./\-~年月至今]+", t)]
    return out


def parse_education(entry: Entry) -> dict:
    tokens = _header_tokens(entry)
    school = entry.pairs.get("school", "")
    degree = entry.pairs.get("degree", "")
    major = entry.pairs.get("major", "")
    rest = []
    for token in tokens:
        if not school and SCHOOL.fullmatch(token):
            school = token
            continue
        if not school:
            m = SCHOOL.search(token)
            if m and len(token) <= 30:
                school = m.group(0)
                token = token.replace(m.group(0), "").strip()
                if not token:
                    continue
        if not degree and any(d.lower() in token.lower() for d in DEGREES) and len(token) <= 8:
            degree = token
            continue
        rest.append(token)
    if not major:
        for token in rest:
            if ((_CJK.search(token) and 2 <= len(token) <= 20 or re.fullmatch(r"[A-Za-z][A-Za-z &,.-]{2,40}", token))
                    and not re.search(r"\d|GPA|排名|主修|绩点|奖", token, re.I) and token != school):
                major = re.sub(r"专业$", "", token) if len(token) > 3 else token
                break
    out = {"school": school, "major": major, "degree": degree, "start": "", "end": ""}
    if entry.period:
        out["start"], out["end"] = entry.period
    if entry.description:
        out["description"] = "\n".join(entry.description)
    return out


def parse_work(entry: Entry) -> dict:
    tokens = _header_tokens(entry)
    company = entry.pairs.get("company", "")
    position = entry.pairs.get("position", "")
    rest = []
    for token in tokens:
        if not company and COMPANY.search(token):
            company = token
        elif not position and TITLE_WORDS.search(token) and len(token) <= 20:
            position = token
        else:
            rest.append(token)
    if not company and rest:
        company = rest.pop(0)
    if not position and rest and len(rest[0]) <= 20:
        position = rest.pop(0)
    out = {"company": company, "position": position, "start": "", "end": "",
           "description": "\n".join(entry.description + [r for r in rest if len(r) > 20])}
    if entry.period:
        out["start"], out["end"] = entry.period
    return out


def _looks_like_tech(token: str) -> bool:
    """"Java、Spring Boot、Kafka": a list of two or more technical names."""
    parts = [p.strip() for p in re.split(r"[、,，/]|\s\+\s", token) if p.strip()]
    return len(parts) >= 2 and sum(bool(re.search(r"[A-Za-z]", p)) for p in parts) >= max(2, len(parts) // 2)


def parse_project(entry: Entry) -> dict:
    tokens = _header_tokens(entry)
    name = entry.pairs.get("project_name", "")
    role = entry.pairs.get("role", "")
    tech = entry.pairs.get("tech_stack", "")
    rest = []
    for token in tokens:
        token = re.sub(r"^项目[一二三四五六七八九十\d]*\s*[:、.]?\s*", "", token) if not name else token
        if not token:
            continue
        if not name:
            name = token
        elif not tech and _looks_like_tech(token):
            tech = token
        elif not role and ROLE_WORDS.search(token) and len(token) <= 12:
            role = token
        else:
            rest.append(token)
    out = {"name": name, "role": role, "tech_stack": tech, "description": "\n".join(entry.description + rest),
           "start": "", "end": ""}
    if entry.period:
        out["start"], out["end"] = entry.period
    return out


def parse_skills(lines: list[str], vocab) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()

    def add(term: str) -> None:
        term = term.strip(" .,:;()")
        if not term or len(term) > 30:
            return
        key = term.lower()
        if key not in seen:
            seen.add(key)
            out.append(term)

    for line in lines:
        line = _BULLET.sub("", line)
        m = re.match(r"^[^:：]{1,12}[:：]\s*(.+)$", line)
        if m and not re.search(r"[A-Za-z]", line.split(":")[0]):
            line = m.group(1)                         # "编程语言: Java、Go" -> the list
        for part in skill_terms(line):
            part = part.strip()
            if not part:
                continue
            if vocab is not None and vocab.canonical(part):
                add(part)
                continue
            found = vocab.find(part) if vocab is not None else []
            tech = [w for _, w in found if re.search(r"[A-Za-z]", w)]
            ascii_names = re.findall(r"[A-Za-z][A-Za-z0-9+#.\-]*(?:\s[A-Z][A-Za-z0-9+#.\-]*)*", part)
            if found or ascii_names:
                for written in tech:
                    add(written)
                if not tech and not ascii_names:
                    for _, written in found:
                        if len(written) >= 4:       # 机器学习, 深度学习; not 缓存, 索引
                            add(written)
                known = {w.lower() for w in tech}
                for name in ascii_names:
                    if name.lower() not in known and not any(name.lower() in k for k in known) \
                            and name.lower() not in {"and", "or", "the", "with", "api"}:
                        add(name)
                if not tech and not ascii_names and len(part) <= 10:
                    add(part)
            elif len(part) <= 10 and not re.search(r"[，。；]", part):
                add(part)
    return out


def _vocab():
    try:
        from plugins.question_bank import default_bank
        return default_bank().vocab
    except Exception:          # the bank is optional here: skills are then kept as written
        return None


def _looks_like_name(token: str) -> bool:
    if token in _NOT_NAMES or token in _HEADING_OF:
        return False
    if re.fullmatch(r"[\u4e00-\u9fff]{2,4}", token):
        return token[0] in SURNAMES or token[:2] in COMPOUND_SURNAMES
    return False


def _clean_value(value: str) -> str:
    value = re.split(r"\s*\|\s*|\s{2,}|\t", value.strip())[0]
    value = _NEXT_LABEL.split(value)[0]
    return _CONTACT.split(value)[0].strip(" ,，;；|") if _CONTACT.search(value) else value.strip(" ,，;；|")


def split_sections(lines: list[str], heading, names) -> dict[str, list[str]]:
    """Lines by section (``heading(line) -> (section | None, rest of the line)``); the lines before
    the first heading are under ``"head"``."""
    sections: dict[str, list[str]] = {"head": [], **{k: [] for k in names}}
    current = "head"
    for line in lines:
        section, rest = heading(line)
        if section is not None:
            current = section
            if rest:
                sections[current].append(rest)
            continue
        sections[current].append(line)
    return sections


def parse_resume_text(text: str, *, file_name: str = "") -> tuple[dict, list[str]]:
    """The resume draft and warnings (Chinese) for what could not be found."""
    sections = split_sections(normalise(text), heading_of, HEADINGS)
    header = sections["head"]

    name, expected = "", ""
    for line in header + sections["basic"] + sections["intention"]:
        for key, value in _kv_pairs(line) or []:
            if key == "name" and not name:
                name = _clean_value(value)
            elif key == "expected_position" and not expected:
                expected = _clean_value(value)
        for m in _KV_ANY.finditer(line):
            key = _KEY_OF[m.group(1)]
            value = _clean_value(line[m.end():])
            if key == "name" and not name:
                name = value
            elif key == "expected_position" and not expected:
                expected = value
    for line in header + sections["basic"]:
        tokens = _tokens(line)
        for i, token in enumerate(tokens[:-1]):
            key = _KEY_OF.get(token)
            if key == "name" and not name:
                name = tokens[i + 1]
            elif key == "expected_position" and not expected and tokens[i + 1] not in _KEY_OF:
                expected = tokens[i + 1]
    if not expected and sections["intention"]:
        first = _tokens(sections["intention"][0])
        expected = first[0] if first else ""
    if not name:
        for line in header + sections["basic"]:
            tokens = _tokens(line)
            if tokens and _looks_like_name(tokens[0]):
                name = tokens[0]
                break
    if name and not expected:
        # a bare title line right under the name (two-column resumes): "后端开发工程师"
        lines_top = header + sections["basic"]
        for i, line in enumerate(lines_top):
            if name in line:
                for nxt in lines_top[i + 1:i + 3]:
                    if (len(nxt) <= 20 and TITLE_WORDS.search(nxt) and not _CONTACT.search(nxt)
                            and ":" not in nxt):
                        expected = nxt.strip()
                        break
                break
    vocab = _vocab()
    resume = {
        "resume_name": "",
        "expected_position": expected[:100],
        "name": name[:100],
        "education": [parse_education(e) for e in split_entries(sections["education"])],
        "work_experience": [parse_work(e) for e in split_entries(sections["work"])],
        "projects": [parse_project(e) for e in split_entries(sections["projects"])],
        "skills": parse_skills(sections["skills"], vocab),
        "self_evaluation": "\n".join(_BULLET.sub("", l) for l in sections["self_evaluation"])[:5000],
    }
    resume["education"] = [e for e in resume["education"] if e["school"] or e["major"]]
    resume["work_experience"] = [w for w in resume["work_experience"] if w["company"] or w["description"]]
    resume["projects"] = [p for p in resume["projects"] if p["name"]]
    resume["resume_name"] = default_resume_name(resume, file_name)
    warnings = []
    for key, label in (("name", "姓名"), ("education", "教育经历"), ("skills", "专业技能")):
        if not resume[key]:
            warnings.append(f"未识别到{label}，请手动填写")
    if not resume["work_experience"] and not resume["projects"]:
        warnings.append("未识别到工作经历或项目经历，请手动填写")
    return resume, warnings


def default_resume_name(resume: dict, file_name: str = "") -> str:
    stem = re.sub(r"\.(pdf|docx|txt|md|markdown)$", "", (file_name or "").strip(), flags=re.I).strip()
    stem = re.sub(r"[\x00-\x1f]", "", stem)[:60]
    if stem:
        return stem
    parts = [p for p in (resume.get("name"), resume.get("expected_position")) if p]
    return ("-".join(parts) + "的简历" if parts else "导入的简历")[:100]
