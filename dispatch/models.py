"""Every table of the dispatch domain, imported in one place for the migration environment."""

from dispatch.hotspots import models as hotspot_models  # noqa: F401
from dispatch.open311 import models as open311_models  # noqa: F401
from dispatch.portal import models as portal_models  # noqa: F401
from dispatch.routing import models as routing_models  # noqa: F401
from dispatch.tickets import models as ticket_models  # noqa: F401
from dispatch.tickets import rollup as ticket_rollup  # noqa: F401
