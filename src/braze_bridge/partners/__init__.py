"""Partner packages and the settings model each source validates against."""

from __future__ import annotations

from pydantic import BaseModel

from braze_bridge.domain.statuses import Source
from braze_bridge.partners.antavo.settings import AntavoSettings
from braze_bridge.partners.extole.settings import ExtoleSettings

SETTINGS_MODELS: dict[Source, type[BaseModel]] = {
    Source.EXTOLE: ExtoleSettings,
    Source.ANTAVO: AntavoSettings,
}
