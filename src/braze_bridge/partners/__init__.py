"""Partner packages and the settings model each source validates against."""

from __future__ import annotations

from pydantic import BaseModel

from braze_bridge.domain.mapping import Partner
from braze_bridge.domain.statuses import Source
from braze_bridge.partners.antavo import PARTNER as ANTAVO
from braze_bridge.partners.antavo.settings import AntavoSettings
from braze_bridge.partners.extole import EXTOLE
from braze_bridge.partners.extole.settings import ExtoleSettings

SETTINGS_MODELS: dict[Source, type[BaseModel]] = {
    Source.EXTOLE: ExtoleSettings,
    Source.ANTAVO: AntavoSettings,
}

# Normalize + map per source; the ingest path and preview look the partner up here and nowhere
# else. A source missing from this registry is stored as `rejected` (`source_not_supported`).
PARTNERS: dict[Source, Partner] = {
    Source.EXTOLE: EXTOLE,
    Source.ANTAVO: ANTAVO,
}
