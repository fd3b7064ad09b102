"""The currency codes Braze logs purchases in; a purchase in any other code is not logged.

From braze-inc/braze-docs `_docs/_developer_guide/analytics/logging_purchases.md` (section
"Supported currencies", commit 04763287). The list is Braze's, not ISO 4217's: it keeps some
retired codes (`VEF`, `MRO`, `STD`, `BYR`, ...) and lacks their successors (`VES`, `MRU`,
`STN`, `BYN`, ...).
"""

from __future__ import annotations

from typing import Final

# As the page lists them, one line per initial.
_LISTED: Final = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN
BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTC BTN BWP BYR BZD
CAD CDF CHF CLF CLP CNY COP CRC CUC CUP CVE CZK
DJF DKK DOP DZD
EEK EGP ERN ETB EUR
FJD FKP
GBP GEL GGP GHS GIP GMD GNF GTQ GYD
HKD HNL HRK HTG HUF
IDR ILS IMP INR IQD IRR ISK
JEP JMD JOD JPY
KES KGS KHR KMF KPW KRW KWD KYD KZT
LAK LBP LKR LRD LSL LTL LVL LYD
MAD MDL MGA MKD MMK MNT MOP MRO MTL MUR MVR MWK MXN MYR MZN
NAD NGN NIO NOK NPR NZD
OMR
PAB PEN PGK PHP PKR PLN PYG
QAR
RON RSD RUB RWF
SAR SBD SCR SDG SEK SGD SHP SLL SOS SRD STD SVC SYP SZL
THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD UYU UZS
VEF VND VUV
WST
XAF XAG XAU XCD XDR XOF XPD XPF XPT
YER
ZAR ZMK ZMW ZWL
"""
BRAZE_CURRENCIES: Final = frozenset(_LISTED.split())
