"""How the demo's reports are worded: several ways a grid worker or a caller describes each
problem, with a detail of place or time, so the demo history reads like reports people write
rather than one fixed phrase per class. The classification model the demo trains
(``gridcore learn``'s code) learns from these words; with one phrase per class it would only
memorise that phrase, and a text repeated verbatim is dropped before training anyway.

Invented text (synthetic demo data): Chinese first, an English gloss after it as the demo's
bilingual reports have.
"""

from __future__ import annotations

import numpy as np

# class → ways of saying it (zh, en)
WORDS: dict[str, list[tuple[str, str]]] = {
    "P0120": [("路灯不亮", "street lamp out"),
              ("路灯坏了，晚上一片漆黑", "lamp broken, pitch dark"),
              ("路灯一闪一闪的", "street light flickering"),
              ("这一排路灯都熄了", "a whole row of lamps is off"),
              ("灯杆上的灯罩掉了，灯不亮", "lamp cover fell off, light out")],
    "P0101": [("上水井盖丢失", "water cover missing"),
              ("自来水井盖不见了", "water main cover gone"),
              ("供水检查井没有盖子", "water inspection well uncovered")],
    "P0102": [("污水井盖破损", "sewage cover broken"), ("污水井盖裂开了", "sewage lid cracked"),
              ("下水道井盖碎了有臭味", "sewer cover shattered, smells")],
    "P0103": [("雨水井盖移位", "drain cover displaced"), ("雨水篦子翘起来了", "storm grate lifted"),
              ("雨水口盖板错位", "gully cover out of place")],
    "P0110": [("热力井盖破损", "heating cover broken"), ("供热井盖塌陷", "heating manhole sunk"),
              ("热力井盖冒白气盖子坏了", "heating well steaming, lid broken")],
    "P0111": [("燃气井盖丢失", "gas cover missing"), ("燃气阀门井盖没了", "gas valve cover gone"),
              ("煤气井口敞着很危险", "gas manhole open, dangerous")],
    "P0304": [("果皮箱满溢", "litter bin overflowing"),
              ("垃圾桶满了没人倒", "bin full, not emptied"),
              ("果皮箱周围都是垃圾", "rubbish all round the litter bin")],
    "P0313": [("座椅破损", "bench broken"), ("长椅的木板断了", "bench slat snapped"),
              ("休息座椅松动摇晃", "seat loose and wobbling")],
    "P0402": [("行道树倒伏", "street tree leaning"),
              ("大风把行道树吹歪了", "wind bent a street tree"),
              ("树快倒了压着人行道", "tree about to fall over the pavement")],
    "P0204": [("信号灯不亮", "traffic signal out"), ("红绿灯坏了路口很乱", "traffic lights dead"),
              ("人行横道信号灯一直红灯", "crossing light stuck on red")],
    "E0102": [("暴露垃圾", "exposed garbage"),
              ("路边堆着生活垃圾没人清", "household rubbish dumped"),
              ("绿地里有人乱扔垃圾袋", "bags of rubbish thrown in the green"),
              ("垃圾散落一地发臭", "garbage scattered and stinking")],
    "E0103": [("道路不洁", "dirty road"), ("马路上很脏没人扫", "street filthy, not swept"),
              ("人行道上有油污和泥土", "oil and mud on the pavement")],
    "E0105": [("乱堆物堆料", "goods piled on the pavement"),
              ("人行道上堆满建材", "building materials piled on the walk"),
              ("店门口堆放杂物挡路", "clutter in front of a shop blocks the way")],
    "E0106": [("涂鸦", "graffiti"), ("墙上被人乱涂乱画", "walls sprayed with scribbles"),
              ("变电箱上喷了涂鸦", "graffiti sprayed on a power box")],
    "E0201": [("违章张贴小广告", "illegal flyers"),
              ("电线杆上贴满小广告", "pole covered in flyers"),
              ("墙面被贴了办证广告", "fake-certificate ads stuck on the wall")],
    "E0503": [("机动车乱停放", "illegal parking"),
              ("汽车停在人行道上", "car parked on the pavement"),
              ("车辆堵住消防通道", "cars blocking the fire lane")],
    "E0504": [("非机动车乱停放", "bicycles blocking the way"),
              ("共享单车倒了一地", "shared bikes knocked over everywhere"),
              ("电动车堵住盲道", "e-bikes parked on the tactile path")],
    "E0502": [("占道经营", "shop occupying the street"),
              ("摊贩在路边摆摊", "hawkers selling on the street"),
              ("饭店把桌椅摆到人行道上", "restaurant tables out on the pavement")],
}
# where or when it was seen (zh, en); empty = no detail
DETAILS: list[tuple[str, str]] = [
    ("", ""), ("，在公交站旁", ", by the bus stop"), ("，小区门口", ", at the estate gate"),
    ("，已经好几天了", ", for several days now"),
    ("，早上巡查发现", ", seen on the morning patrol"),
    ("，居民来电反映", ", residents called about it"), ("，学校附近", ", near the school"),
    ("，路口东侧", ", east side of the crossing"),
]


def describe(rng: np.random.Generator, category: str, part: str | None = None) -> str:
    """One report's words for ``category``; a part report names the part's code half the time
    (a worker reading it off the plate)."""
    zh, en = WORDS[category][int(rng.integers(len(WORDS[category])))]
    dzh, den = DETAILS[int(rng.integers(len(DETAILS)))]
    code = f" (部件 {part})" if part is not None and rng.random() < 0.5 else ""
    return f"{zh}{dzh}{code} {en}{den}"



# class → how the department answered when it closed the case (zh, en): what the desk's
# similar cases show as "handled before like this"
REPLIES: dict[str, list[tuple[str, str]]] = {
    "P0120": [("已更换灯泡，恢复照明", "bulb replaced, light restored"),
              ("线路老化短路，已更换电缆", "old cable shorted, cable replaced"),
              ("灯具进水损坏，已整体更换", "water in the fitting, lamp replaced")],
    "P0101": [("已补装新井盖", "new cover fitted"), ("已安装防盗井盖", "anti-theft cover fitted")],
    "P0102": [("已更换破损井盖", "broken cover replaced"),
              ("已临时围挡并于次日更换", "fenced off, replaced next day")],
    "P0103": [("已复位并加固", "put back and fixed"), ("已更换雨水篦子", "grate replaced")],
    "P0110": [("已更换井盖并检查管道", "cover replaced, pipe checked")],
    "P0111": [("已补装井盖并检测燃气泄漏，无泄漏", "cover fitted, no gas leak found")],
    "P0304": [("已清运并增加清运频次", "emptied, collected more often now"),
              ("已清运", "emptied")],
    "P0313": [("已更换座椅木板", "slats replaced"), ("已紧固螺栓", "bolts tightened")],
    "P0402": [("已扶正并加固支撑", "tree straightened and staked"),
              ("已修剪树冠", "crown pruned"), ("已移除倒伏树木并补植", "fallen tree removed, "
                                                               "replanted")],
    "P0204": [("已修复信号机", "signal repaired"), ("控制箱故障，已更换", "controller replaced")],
    "E0102": [("已清理完毕", "cleared"), ("已清理并对周边商户宣传教育",
                                       "cleared, nearby shops told the rules")],
    "E0103": [("已安排保洁员清扫", "street sweeper sent"), ("已冲洗路面", "road washed")],
    "E0105": [("已责令当事人清理", "owner told to clear it, cleared"),
              ("已暂扣堆放物品", "goods taken away")],
    "E0106": [("已清除涂鸦", "graffiti removed"), ("已粉刷覆盖", "painted over")],
    "E0201": [("已清除小广告", "flyers removed"), ("已清除并追查号码", "removed, number traced")],
    "E0503": [("已通知车主挪车", "owner told to move the car"),
              ("交警已贴单处罚", "ticketed by traffic police")],
    "E0504": [("已通知共享单车企业清理", "bike company told to tidy up"),
              ("已摆放整齐", "bikes lined up")],
    "E0502": [("已劝离摊贩", "hawkers moved on"), ("已责令店家收回桌椅", "tables taken back in")],
}


def reply(rng: np.random.Generator, category: str) -> str:
    """How the department answered a closed case of ``category``."""
    options = REPLIES.get(category) or [("已处理完毕", "handled")]
    zh, en = options[int(rng.integers(len(options)))]
    return f"{zh} {en}"
