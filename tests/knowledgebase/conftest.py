"""Fixtures for the knowledge-base tests: the router on the app, a cast of users, the shipped
sample and further articles, and helpers around the HTTP API.

The kb router is mounted on the test app unless the app already serves it, so these tests
run before and after the router is wired into ``hotline.app``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hotline.core import db
from hotline.core.events import events_after, last_event_id
from knowledgebase import service
from knowledgebase.router import router as kb_router

SAMPLE = Path(service.__file__).parent / "reference" / "kb_sample.jsonl"

# name -> (roles, departments)
CAST: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "editor": (("editor",), ()),
    "editor2": (("editor",), ()),
    "supervisor": (("supervisor",), ()),
    "agent": (("agent",), ()),
    "hrss_editor": (("editor",), ("C-HRSS",)),
    "admin": (("admin",), ()),
}

# Further articles in the sample's style, on topics near the sample's, so that search has to
# tell similar articles apart (身份证 vs 社保卡 补办, 出生医学证明 vs 新生儿入户 …).
EXTRA_ARTICLES: list[dict[str, Any]] = [
    {
        "key": "KB-GA-001",
        "category": "户籍与居住",
        "title": "居民身份证补领与换领",
        "keywords": ["身份证", "补领", "换领", "遗失"],
        "body": (
            "居民身份证遗失或损坏的，可到户籍所在地或居住地公安派出所户籍窗口申请补领，需本人"
            "到场采集人像和指纹，工本费20元。有效期满前三个月内可申请换领，跨省异地也可办理。"
            "一般在20个工作日内制证完成，可选择邮寄到家；急需使用的可申请办理临时居民身份证。"
        ),
    },
    {
        "key": "KB-GA-002",
        "category": "户籍与居住",
        "title": "户口簿遗失补发",
        "keywords": ["户口簿", "户口本", "补发"],
        "body": (
            "户口簿遗失或损毁的，由户主或本户成员持本人身份证到户籍所在地派出所申请补发，填写"
            "户口簿补发申请表，经审核后当场或3个工作日内补发。补发后原户口簿自动作废。"
        ),
    },
    {
        "key": "KB-GA-003",
        "category": "户籍与居住",
        "title": "户口迁移与投靠入户",
        "keywords": ["户口迁移", "投靠", "夫妻投靠", "父母投靠", "迁入"],
        "body": (
            "夫妻一方为本市户籍、结婚满一定年限的，可申请夫妻投靠入户；子女为本市户籍的，其达"
            "到退休年龄的父母可申请投靠入户。申请人通过网上办事大厅或派出所户籍窗口提交结婚证"
            "、户口簿、身份证和房产或租赁证明，审批通过后领取准迁证明办理迁移。"
        ),
    },
    {
        "key": "KB-JT-003",
        "category": "交通出行",
        "title": "机动车驾驶证期满换证",
        "keywords": ["驾驶证", "驾照", "换证", "期满换证"],
        "body": (
            "机动车驾驶证有效期满前九十日内，驾驶人可通过交管12123手机APP在线申请换证，也可到"
            "车管所或交警服务站办理，需提交身份证明和体检证明。驾驶证遗失的可申请补领，补领期"
            "间不得驾驶机动车。"
        ),
    },
    {
        "key": "KB-JT-004",
        "category": "交通出行",
        "title": "机动车年检预约",
        "keywords": ["年检", "车辆检测", "年审", "检验"],
        "body": (
            "私家小型客车自注册登记之日起六年内免上线检验，每两年申领检验标志；超过六年的需到"
            "机动车检测站上线检验。可通过交管12123手机APP预约检测站和时间，检验合格后在线领取"
            "电子检验标志。"
        ),
    },
    {
        "key": "KB-JT-005",
        "category": "交通出行",
        "title": "出租车和网约车服务投诉",
        "keywords": ["出租车", "的士", "网约车", "拒载", "绕路"],
        "body": (
            "乘坐出租车或网约车遇到拒载、绕路、议价、不打表等问题，可拨打12345投诉，请提供车"
            "牌号、乘车时间、上下车地点和车费票据。投诉将转交市交通运输部门调查处理，并在规定"
            "时间内答复。"
        ),
    },
    {
        "key": "KB-YB-002",
        "category": "医疗保障",
        "title": "医保电子凭证激活与使用",
        "keywords": ["医保电子凭证", "医保码", "激活", "扫码就医"],
        "body": (
            "参保人可通过国家医保服务平台APP、微信或支付宝激活医保电子凭证，激活后在定点医院"
            "和药店出示医保码即可扫码就医购药、直接结算，无需携带实体卡。"
        ),
    },
    {
        "key": "KB-YB-003",
        "category": "医疗保障",
        "title": "门诊特定病种待遇申请",
        "keywords": ["门诊特定病种", "慢性病", "特殊病种", "门特"],
        "body": (
            "患有高血压、糖尿病、恶性肿瘤等门诊特定病种的参保人，可持病历资料和诊断证明到定点"
            "医疗机构申请门诊特定病种待遇认定，认定后门诊费用按规定比例报销。"
        ),
    },
    {
        "key": "KB-SB-004",
        "category": "社会保障",
        "title": "养老金领取资格认证",
        "keywords": ["养老金", "资格认证", "退休人员", "认证"],
        "body": (
            "领取养老金的退休人员每年需进行一次领取资格认证，可通过人社部门APP刷脸认证，行动"
            "不便的可申请上门认证。未按时认证的将暂停发放养老金，认证后恢复并补发。"
        ),
    },
    {
        "key": "KB-SB-005",
        "category": "社会保障",
        "title": "工伤认定申请",
        "keywords": ["工伤", "工伤认定", "职业病", "工伤保险"],
        "body": (
            "职工发生事故伤害或被诊断为职业病的，用人单位应在30日内向人社部门提出工伤认定申请"
            "；单位未申请的，职工本人或近亲属可在一年内申请。需提交劳动关系证明、医疗诊断证明"
            "等材料。"
        ),
    },
    {
        "key": "KB-LD-001",
        "category": "人才与就业",
        "title": "拖欠工资投诉",
        "keywords": ["欠薪", "拖欠工资", "劳动监察", "工资"],
        "body": (
            "用人单位拖欠或克扣劳动者工资的，劳动者可向用工所在地区人力资源和社会保障部门劳动"
            "保障监察机构投诉，也可拨打12345或12333反映。请提供劳动合同、工资条、考勤记录等证"
            "据，劳动监察部门将依法责令限期支付。"
        ),
    },
    {
        "key": "KB-LD-002",
        "category": "人才与就业",
        "title": "劳动争议仲裁申请",
        "keywords": ["劳动仲裁", "劳动争议", "辞退", "经济补偿"],
        "body": (
            "劳动者与用人单位因解除劳动合同、经济补偿、社会保险等发生争议的，可在知道权利被侵"
            "害之日起一年内向劳动人事争议仲裁委员会申请仲裁，仲裁不收费。"
        ),
    },
    {
        "key": "KB-GJJ-003",
        "category": "住房公积金",
        "title": "离职和退休提取住房公积金",
        "keywords": ["离职提取", "退休提取", "销户", "公积金"],
        "body": (
            "职工与单位解除劳动关系且未再就业满半年的，非本市户籍职工可申请提取住房公积金并销"
            "户；职工退休的，可凭退休证明一次性提取账户余额。可通过手机APP或服务网点办理。"
        ),
    },
    {
        "key": "KB-CRJ-002",
        "category": "出入境",
        "title": "普通护照申请",
        "keywords": ["护照", "出国", "出境"],
        "body": (
            "中国公民因私出国可向出入境管理部门申请普通护照，全国通办，需本人到场采集指纹和照"
            "片，一般7个工作日内签发，可选择邮寄送达。护照有效期不足半年的建议提前换发。"
        ),
    },
    {
        "key": "KB-SC-004",
        "category": "市场监管",
        "title": "电梯故障和困人处置",
        "keywords": ["电梯", "电梯困人", "电梯故障", "特种设备"],
        "body": (
            "电梯发生困人时请保持冷静，按下电梯内紧急呼叫按钮或拨打电梯内张贴的应急救援电话和"
            "96333，不要强行扒门。电梯频繁故障的可向物业反映，或拨打12345向市场监管部门投诉。"
        ),
    },
    {
        "key": "KB-SC-005",
        "category": "市场监管",
        "title": "价格欺诈和不明码标价投诉",
        "keywords": ["价格欺诈", "明码标价", "乱收费", "宰客"],
        "body": (
            "经营者未明码标价、虚假打折、收费高于标价的，消费者可保留票据后拨打12345或12315投"
            "诉，市场监管部门将依法调查。景区、酒店、停车场乱收费也可投诉。"
        ),
    },
    {
        "key": "KB-HB-003",
        "category": "城市管理",
        "title": "生活垃圾清运不及时",
        "keywords": ["垃圾", "垃圾清运", "垃圾分类", "环卫"],
        "body": (
            "小区或街道生活垃圾堆积、清运不及时、垃圾桶满溢的，可拨打12345反映，工单将派至属"
            "地镇街环卫部门处理。居民应按照可回收物、有害垃圾、厨余垃圾和其他垃圾进行分类投放"
            "。"
        ),
    },
    {
        "key": "KB-CG-003",
        "category": "城市管理",
        "title": "违法建设举报",
        "keywords": ["违章建筑", "违建", "私搭乱建", "加建"],
        "body": (
            "发现楼顶加建、私搭乱建、侵占公共空间等违法建设行为的，可拨打12345举报，请提供具"
            "体地址和照片。属地镇街综合执法部门将现场核查，对违法建设依法责令拆除。"
        ),
    },
    {
        "key": "KB-CG-004",
        "category": "城市管理",
        "title": "行道树修剪和倒伏树木处理",
        "keywords": ["树木", "修剪", "倒伏", "绿化"],
        "body": (
            "道路两旁树木枝叶遮挡路灯或信号灯、树木倒伏阻碍交通的，可拨打12345反映，园林绿化"
            "部门将安排修剪或清理。台风过后倒伏树木较多时按先主干道后支路的顺序处理。"
        ),
    },
    {
        "key": "KB-ZJ-003",
        "category": "住房建设",
        "title": "住宅专项维修资金使用",
        "keywords": ["维修资金", "维修基金", "漏水", "公共部位"],
        "body": (
            "住宅共用部位、共用设施设备如屋面漏水、外墙脱落、电梯大修需要维修的，可申请使用住"
            "宅专项维修资金，由业主委员会或物业服务企业提出方案，经业主表决同意后向住房和城乡"
            "建设部门申请划拨。"
        ),
    },
    {
        "key": "KB-ZJ-004",
        "category": "住房建设",
        "title": "二手房交易与不动产登记",
        "keywords": ["不动产登记", "过户", "二手房", "房产证"],
        "body": (
            "买卖二手房的双方可在不动产登记中心一窗办理交易、缴税和转移登记，需携带身份证、不"
            "动产权证书和买卖合同，资料齐全的一般5个工作日内领取新的不动产权证书。"
        ),
    },
    {
        "key": "KB-JY-002",
        "category": "教育",
        "title": "幼儿园招生报名",
        "keywords": ["幼儿园", "学前教育", "入园", "公办幼儿园"],
        "body": (
            "公办幼儿园每年5月前后公布招生简章，适龄幼儿家长通过学前教育招生系统网上报名，按"
            "户籍、居住和社保等条件排序录取。民办普惠性幼儿园按收费标准收取保育教育费。"
        ),
    },
    {
        "key": "KB-JY-003",
        "category": "教育",
        "title": "中考报名与高中招生",
        "keywords": ["中考", "高中", "升学", "中招"],
        "body": (
            "初中毕业生在每年3月左右通过中考报名系统报名，随迁子女符合条件的可在本市报考。普"
            "通高中招生按中考成绩和志愿录取，具体以教育部门公布的招生方案为准。"
        ),
    },
    {
        "key": "KB-MZ-003",
        "category": "民政",
        "title": "临时救助申请",
        "keywords": ["临时救助", "急难", "生活困难", "救助"],
        "body": (
            "因火灾、交通事故、突发重大疾病等导致基本生活暂时出现严重困难的家庭或个人，可向所"
            "在地镇街申请临时救助，情况紧急的可先行救助再补办手续。"
        ),
    },
    {
        "key": "KB-MZ-004",
        "category": "民政",
        "title": "高龄老人津贴",
        "keywords": ["高龄津贴", "老人补贴", "长寿金", "老年人"],
        "body": (
            "本市户籍年满80周岁的老年人可申领高龄津贴，由本人或家属持身份证、户口簿到户籍所在"
            "地社区居委会或镇街申请，审核通过后按月发放至本人银行账户。"
        ),
    },
    {
        "key": "KB-WS-001",
        "category": "卫生健康",
        "title": "儿童预防接种预约",
        "keywords": ["疫苗", "接种", "预防接种", "打针"],
        "body": (
            "儿童出生后应在居住地社区卫生服务中心建立预防接种证，按免疫程序接种疫苗。可通过微"
            "信公众号预约接种时间，接种时携带预防接种证。"
        ),
    },
    {
        "key": "KB-WS-002",
        "category": "卫生健康",
        "title": "出生医学证明补发",
        "keywords": ["出生医学证明", "出生证", "补发", "换发"],
        "body": (
            "出生医学证明遗失的，由父母持身份证、户口簿到婴儿出生的助产机构或区卫生健康部门指"
            "定的机构申请补发；内容有误的可申请换发。补发须经公安户籍核查。"
        ),
    },
    {
        "key": "KB-SW-002",
        "category": "税务",
        "title": "个人代开发票",
        "keywords": ["代开发票", "发票", "开票"],
        "body": (
            "自然人需要开具发票的，可通过电子税务局或个人所得税APP申请代开，也可到办税服务厅"
            "办理，需提供身份证和合同等证明材料，按规定缴纳相关税费后开具。"
        ),
    },
    {
        "key": "KB-SD-002",
        "category": "水电燃气",
        "title": "燃气泄漏应急和燃气报装",
        "keywords": ["燃气", "煤气", "燃气泄漏", "报装"],
        "body": (
            "闻到燃气异味时应立即关闭阀门、打开门窗通风，切勿开关电器和使用明火，到室外拨打燃"
            "气公司抢修电话或119。新装燃气可向燃气企业申请报装，工作人员上门勘察后安装。"
        ),
    },
    {
        "key": "KB-SD-003",
        "category": "水电燃气",
        "title": "水费电费缴纳和账单查询",
        "keywords": ["水费", "电费", "缴费", "账单"],
        "body": (
            "水费和电费可通过供水、供电企业官方APP、微信公众号、支付宝生活缴费或银行代扣缴纳"
            "，也可到营业厅缴费。对账单有异议的可联系供水或供电企业客服核查。"
        ),
    },
    {
        "key": "KB-RC-002",
        "category": "人才与就业",
        "title": "新引进人才生活补贴申领",
        "keywords": ["人才补贴", "生活补贴", "租房补贴", "新引进人才"],
        "body": (
            "新引进到本市工作的全日制本科及以上学历人才，可在规定期限内通过人才服务平台申请生"
            "活补贴和租房补贴，需提供学历证书、劳动合同和社保缴费记录，审核通过后分期发放。"
        ),
    },
    {
        "key": "KB-ZW-003",
        "category": "政务服务",
        "title": "无犯罪记录证明开具",
        "keywords": ["无犯罪记录证明", "犯罪记录", "开证明"],
        "body": (
            "因出国、就业等需要无犯罪记录证明的，本人可通过公安网上服务平台或到户籍所在地、居"
            "住地派出所申请，一般3个工作日内出具，可开具电子证明。"
        ),
    },
]


def sample_records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]


def jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


@pytest.fixture
def extra_articles() -> list[dict[str, Any]]:
    return [dict(a) for a in EXTRA_ARTICLES]


@pytest.fixture
def app(app):
    """The root fixture's app, with the kb routes mounted if it does not serve them yet."""
    if not any(getattr(r, "path", "").startswith("/api/v1/kb/") for r in app.routes):
        app.include_router(kb_router)
    return app


@pytest.fixture
def users(make_user) -> dict[str, dict[str, str]]:
    """Authorization headers by cast name."""
    return {name: make_user(name, *roles, departments=deps) for name, (roles, deps) in CAST.items()}


@pytest.fixture
def sample(database) -> str:
    with db.transaction() as session:
        return service.seed_sample(session)


class KB:
    """The knowledge-base API as the console and the editors' pages call it."""

    def __init__(self, client: TestClient, users: dict[str, dict[str, str]]) -> None:
        self.client = client
        self.users = users

    def call(self, method: str, path: str, as_: str | None = None, expect: int = 200, **kw):
        headers = self.users[as_] if as_ else {}
        response = self.client.request(method, f"/api/v1/kb{path}", headers=headers, **kw)
        assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def error(self, method: str, path: str, as_: str | None, status: int, **kw) -> str:
        return self.call(method, path, as_, expect=status, **kw)["error"]["code"]

    def create(self, key: str = "KB-T-001", as_: str = "editor", **fields) -> dict:
        body = {
            "key": key,
            "title": "身份证补领",
            "body": "居民身份证遗失的，可到派出所申请**补领**。",
            "category": "户籍与居住",
            "keywords": ["身份证", "补领"],
            **fields,
        }
        return self.call("POST", "/articles", as_, expect=201, json=body)

    def publish(self, key: str, author: str = "editor", reviewer: str = "editor2") -> dict:
        self.call("POST", f"/articles/{key}/submit", author)
        self.call("POST", f"/articles/{key}/approve", reviewer, json={"comment": "ok"})
        return self.call("POST", f"/articles/{key}/publish", reviewer)

    def search(self, q: str, **params) -> list[dict]:
        return self.call("GET", "/search", params={"q": q, **params})


@pytest.fixture
def kb(client, users) -> KB:
    return KB(client, users)


@pytest.fixture
def kb_events(database) -> Callable[[int], list[dict]]:
    """Events on ``kb.articles`` after a mark (``mark = kb_events.mark()``)."""

    def after(mark: int = 0) -> list[dict]:
        with db.transaction() as session:
            return events_after(session, mark, topics=["kb.articles"])

    def mark() -> int:
        with db.transaction() as session:
            return last_event_id(session)

    after.mark = mark  # type: ignore[attr-defined]
    return after
