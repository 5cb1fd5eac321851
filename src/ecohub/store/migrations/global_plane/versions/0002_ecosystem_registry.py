"""ecosystem registry: partners, rounds, cap table, exits, suppliers/BOM, markets, listings; taxonomy + markets as data

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 06:15:36.096669
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# Data of this revision (kept literal so the migration never changes when application code does).
BRAND_REQUIREMENT = "ECOHUB-CONFORMANCE"  # the brand's own suite + EN 303 645 baseline, needed everywhere

CATEGORIES = [
    ("plug", "Smart plug", "power"), ("power-strip", "Power strip", "power"),
    ("wall-switch", "Wall switch", "power"), ("energy-meter", "Energy meter", "power"),
    ("light", "Light", "lighting"), ("bulb", "Bulb", "lighting"), ("light-strip", "Light strip", "lighting"),
    ("ceiling-light", "Ceiling light", "lighting"), ("desk-lamp", "Desk lamp", "lighting"),
    ("night-light", "Night light", "lighting"),
    ("sensor", "Temperature & humidity sensor", "sensing"), ("motion-sensor", "Motion sensor", "sensing"),
    ("door-sensor", "Door & window sensor", "sensing"), ("water-leak-sensor", "Water leak sensor", "sensing"),
    ("smoke-detector", "Smoke detector", "sensing"), ("air-monitor", "Air quality monitor", "air"),
    ("air-purifier", "Air purifier", "air"), ("humidifier", "Humidifier", "air"),
    ("dehumidifier", "Dehumidifier", "air"), ("fan", "Fan", "climate"), ("heater", "Heater", "climate"),
    ("air-conditioner", "Air conditioner", "climate"), ("thermostat", "Thermostat", "climate"),
    ("camera", "Security camera", "security"), ("doorbell", "Video doorbell", "security"),
    ("door-lock", "Door lock", "security"), ("alarm-hub", "Alarm hub", "security"),
    ("robot-vacuum", "Robot vacuum", "cleaning"), ("vacuum", "Cordless vacuum", "cleaning"),
    ("mop", "Wet & dry mop", "cleaning"), ("washing-machine", "Washing machine", "appliance"),
    ("fridge", "Refrigerator", "appliance"), ("rice-cooker", "Rice cooker", "kitchen"),
    ("kettle", "Kettle", "kitchen"), ("coffee-machine", "Coffee machine", "kitchen"),
    ("air-fryer", "Air fryer", "kitchen"), ("toothbrush", "Electric toothbrush", "personal-care"),
    ("shaver", "Shaver", "personal-care"), ("hair-dryer", "Hair dryer", "personal-care"),
    ("scale", "Body scale", "health"), ("blood-pressure-monitor", "Blood pressure monitor", "health"),
    ("band", "Fitness band", "wearable"), ("scooter", "Electric scooter", "mobility"),
    ("e-bike", "Electric bike", "mobility"), ("speaker", "Smart speaker", "media"),
    ("projector", "Projector", "media"), ("router", "Wi-Fi router", "network"),
    ("gateway", "Hub / gateway", "network"), ("curtain", "Curtain motor", "home"),
    ("pet-feeder", "Pet feeder", "home"), ("sprinkler", "Garden sprinkler", "outdoor"),
    ("uncategorised", "Uncategorised", "other"),
]

# (alpha-2, alpha-3, numeric, name, currency, primary language, region)
MARKETS = [
    ("AT", "AUT", "040", "Austria", "EUR", "de", "European Union"),
    ("BE", "BEL", "056", "Belgium", "EUR", "nl", "European Union"),
    ("BG", "BGR", "100", "Bulgaria", "EUR", "bg", "European Union"),
    ("HR", "HRV", "191", "Croatia", "EUR", "hr", "European Union"),
    ("CY", "CYP", "196", "Cyprus", "EUR", "el", "European Union"),
    ("CZ", "CZE", "203", "Czechia", "CZK", "cs", "European Union"),
    ("DK", "DNK", "208", "Denmark", "DKK", "da", "European Union"),
    ("EE", "EST", "233", "Estonia", "EUR", "et", "European Union"),
    ("FI", "FIN", "246", "Finland", "EUR", "fi", "European Union"),
    ("FR", "FRA", "250", "France", "EUR", "fr", "European Union"),
    ("DE", "DEU", "276", "Germany", "EUR", "de", "European Union"),
    ("GR", "GRC", "300", "Greece", "EUR", "el", "European Union"),
    ("HU", "HUN", "348", "Hungary", "HUF", "hu", "European Union"),
    ("IE", "IRL", "372", "Ireland", "EUR", "en", "European Union"),
    ("IT", "ITA", "380", "Italy", "EUR", "it", "European Union"),
    ("LV", "LVA", "428", "Latvia", "EUR", "lv", "European Union"),
    ("LT", "LTU", "440", "Lithuania", "EUR", "lt", "European Union"),
    ("LU", "LUX", "442", "Luxembourg", "EUR", "fr", "European Union"),
    ("MT", "MLT", "470", "Malta", "EUR", "mt", "European Union"),
    ("NL", "NLD", "528", "Netherlands", "EUR", "nl", "European Union"),
    ("PL", "POL", "616", "Poland", "PLN", "pl", "European Union"),
    ("PT", "PRT", "620", "Portugal", "EUR", "pt", "European Union"),
    ("RO", "ROU", "642", "Romania", "RON", "ro", "European Union"),
    ("SK", "SVK", "703", "Slovakia", "EUR", "sk", "European Union"),
    ("SI", "SVN", "705", "Slovenia", "EUR", "sl", "European Union"),
    ("ES", "ESP", "724", "Spain", "EUR", "es", "European Union"),
    ("SE", "SWE", "752", "Sweden", "SEK", "sv", "European Union"),
    ("NO", "NOR", "578", "Norway", "NOK", "nb", "EEA"),
    ("IS", "ISL", "352", "Iceland", "ISK", "is", "EEA"),
    ("LI", "LIE", "438", "Liechtenstein", "CHF", "de", "EEA"),
    ("GB", "GBR", "826", "United Kingdom", "GBP", "en", "Europe"),
    ("CH", "CHE", "756", "Switzerland", "CHF", "de", "Europe"),
    ("RS", "SRB", "688", "Serbia", "RSD", "sr", "Europe"),
    ("UA", "UKR", "804", "Ukraine", "UAH", "uk", "Europe"),
    ("TR", "TUR", "792", "Türkiye", "TRY", "tr", "Europe"),
    ("US", "USA", "840", "United States", "USD", "en", "North America"),
    ("CA", "CAN", "124", "Canada", "CAD", "en", "North America"),
    ("MX", "MEX", "484", "Mexico", "MXN", "es", "Latin America"),
    ("BR", "BRA", "076", "Brazil", "BRL", "pt", "Latin America"),
    ("AR", "ARG", "032", "Argentina", "ARS", "es", "Latin America"),
    ("CL", "CHL", "152", "Chile", "CLP", "es", "Latin America"),
    ("CO", "COL", "170", "Colombia", "COP", "es", "Latin America"),
    ("PE", "PER", "604", "Peru", "PEN", "es", "Latin America"),
    ("EC", "ECU", "218", "Ecuador", "USD", "es", "Latin America"),
    ("UY", "URY", "858", "Uruguay", "UYU", "es", "Latin America"),
    ("CR", "CRI", "188", "Costa Rica", "CRC", "es", "Latin America"),
    ("PA", "PAN", "591", "Panama", "USD", "es", "Latin America"),
    ("GT", "GTM", "320", "Guatemala", "GTQ", "es", "Latin America"),
    ("DO", "DOM", "214", "Dominican Republic", "DOP", "es", "Latin America"),
    ("CN", "CHN", "156", "China", "CNY", "zh", "East Asia"),
    ("IN", "IND", "356", "India", "INR", "hi", "South Asia"),
    ("JP", "JPN", "392", "Japan", "JPY", "ja", "East Asia"),
    ("KR", "KOR", "410", "South Korea", "KRW", "ko", "East Asia"),
    ("TW", "TWN", "158", "Taiwan", "TWD", "zh", "East Asia"),
    ("HK", "HKG", "344", "Hong Kong", "HKD", "zh", "East Asia"),
    ("MO", "MAC", "446", "Macao", "MOP", "zh", "East Asia"),
    ("SG", "SGP", "702", "Singapore", "SGD", "en", "Southeast Asia"),
    ("MY", "MYS", "458", "Malaysia", "MYR", "ms", "Southeast Asia"),
    ("TH", "THA", "764", "Thailand", "THB", "th", "Southeast Asia"),
    ("ID", "IDN", "360", "Indonesia", "IDR", "id", "Southeast Asia"),
    ("PH", "PHL", "608", "Philippines", "PHP", "en", "Southeast Asia"),
    ("VN", "VNM", "704", "Viet Nam", "VND", "vi", "Southeast Asia"),
    ("KH", "KHM", "116", "Cambodia", "KHR", "km", "Southeast Asia"),
    ("MM", "MMR", "104", "Myanmar", "MMK", "my", "Southeast Asia"),
    ("AU", "AUS", "036", "Australia", "AUD", "en", "Oceania"),
    ("NZ", "NZL", "554", "New Zealand", "NZD", "en", "Oceania"),
    ("PK", "PAK", "586", "Pakistan", "PKR", "ur", "South Asia"),
    ("BD", "BGD", "050", "Bangladesh", "BDT", "bn", "South Asia"),
    ("LK", "LKA", "144", "Sri Lanka", "LKR", "si", "South Asia"),
    ("NP", "NPL", "524", "Nepal", "NPR", "ne", "South Asia"),
    ("KZ", "KAZ", "398", "Kazakhstan", "KZT", "kk", "Central Asia"),
    ("UZ", "UZB", "860", "Uzbekistan", "UZS", "uz", "Central Asia"),
    ("AE", "ARE", "784", "United Arab Emirates", "AED", "ar", "Middle East"),
    ("SA", "SAU", "682", "Saudi Arabia", "SAR", "ar", "Middle East"),
    ("QA", "QAT", "634", "Qatar", "QAR", "ar", "Middle East"),
    ("KW", "KWT", "414", "Kuwait", "KWD", "ar", "Middle East"),
    ("BH", "BHR", "048", "Bahrain", "BHD", "ar", "Middle East"),
    ("OM", "OMN", "512", "Oman", "OMR", "ar", "Middle East"),
    ("IL", "ISR", "376", "Israel", "ILS", "he", "Middle East"),
    ("JO", "JOR", "400", "Jordan", "JOD", "ar", "Middle East"),
    ("LB", "LBN", "422", "Lebanon", "LBP", "ar", "Middle East"),
    ("EG", "EGY", "818", "Egypt", "EGP", "ar", "Africa"),
    ("MA", "MAR", "504", "Morocco", "MAD", "ar", "Africa"),
    ("TN", "TUN", "788", "Tunisia", "TND", "ar", "Africa"),
    ("NG", "NGA", "566", "Nigeria", "NGN", "en", "Africa"),
    ("KE", "KEN", "404", "Kenya", "KES", "en", "Africa"),
    ("ZA", "ZAF", "710", "South Africa", "ZAR", "en", "Africa"),
    ("GH", "GHA", "288", "Ghana", "GHS", "en", "Africa"),
    ("TZ", "TZA", "834", "Tanzania", "TZS", "sw", "Africa"),
    ("SN", "SEN", "686", "Senegal", "XOF", "fr", "Africa"),
    ("CI", "CIV", "384", "Côte d'Ivoire", "XOF", "fr", "Africa"),
]

# EU/EEA/UK/CH and the rest of Europe → eu; the Americas → us; China → cn; India → in; the rest → sg.
CELL_OF_REGION = {
    "European Union": "eu", "EEA": "eu", "Europe": "eu", "North America": "us", "Latin America": "us",
    "East Asia": "sg", "Southeast Asia": "sg", "South Asia": "sg", "Central Asia": "sg", "Oceania": "sg",
    "Middle East": "sg", "Africa": "sg",
}
CELL_OVERRIDES = {"CN": "cn", "IN": "in"}

_EU = ["CE-RED", "EN-18031", "EU-ROHS"]
# Regulatory requirement ids per region (EU/EEA) or per country; the brand's own requirement is added to all.
PROFILES: dict[str, list[str]] = {
    "European Union": _EU, "EEA": _EU,
    "GB": ["UKCA", "PSTI"], "CH": ["CE-RED"], "RS": ["RS-RATEL"], "UA": ["UA-TR"], "TR": ["CE-RED"],
    "US": ["FCC"], "CA": ["ISED"], "MX": ["NOM", "IFT"], "BR": ["ANATEL"], "AR": ["ENACOM"], "CL": ["SUBTEL"],
    "CO": ["CRC-CO"], "PE": ["MTC-PE"], "EC": ["ARCOTEL"], "UY": ["URSEC"], "CR": ["SUTEL"], "PA": ["ASEP"],
    "GT": ["SIT-GT"], "DO": ["INDOTEL"],
    "CN": ["CCC", "SRRC", "CTA"], "IN": ["BIS", "WPC"], "JP": ["TELEC", "PSE"], "KR": ["KC"], "TW": ["NCC", "BSMI"],
    "HK": ["OFCA"], "MO": ["CTT-MO"], "SG": ["IMDA"], "MY": ["SIRIM"], "TH": ["NBTC", "TISI"], "ID": ["SDPPI"],
    "PH": ["NTC"], "VN": ["MIC-VN"], "KH": ["TRC-KH"], "MM": ["PTD-MM"], "AU": ["RCM"], "NZ": ["RCM"],
    "PK": ["PTA"], "BD": ["BTRC"], "LK": ["TRCSL"], "NP": ["NTA"], "KZ": ["EAC"], "UZ": ["UZSTANDARD"],
    "AE": ["TDRA"], "SA": ["CST", "SASO"], "QA": ["CRA-QA"], "KW": ["CITRA"], "BH": ["TRA-BH"], "OM": ["TRA-OM"],
    "IL": ["MOC-IL"], "JO": ["TRC-JO"], "LB": ["MOT-LB"], "EG": ["NTRA"], "MA": ["ANRT"], "TN": ["CERT-TN"],
    "NG": ["NCC-NG", "SONCAP"], "KE": ["CA-KE"], "ZA": ["ICASA", "NRCS"], "GH": ["NCA-GH"], "TZ": ["TCRA"],
    "SN": ["ARTP"], "CI": ["ARTCI"],
}


def upgrade() -> None:
    categories = op.create_table('categories',
    sa.Column('slug', sa.String(length=48), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('family', sa.String(length=48), nullable=False),
    sa.PrimaryKeyConstraint('slug', name=op.f('pk_categories'))
    )
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_categories_family'), ['family'], unique=False)

    markets = op.create_table('markets',
    sa.Column('code', sa.String(length=2), nullable=False),
    sa.Column('alpha3', sa.String(length=3), nullable=False),
    sa.Column('numeric', sa.String(length=3), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('region', sa.String(length=48), nullable=False),
    sa.Column('cell', sa.String(length=16), nullable=False),
    sa.Column('cert_profile', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_markets')),
    sa.UniqueConstraint('alpha3', name=op.f('uq_markets_alpha3'))
    )
    with op.batch_alter_table('markets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_markets_cell'), ['cell'], unique=False)

    op.create_table('suppliers',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppliers')),
    sa.UniqueConstraint('name', name=op.f('uq_suppliers_name'))
    )
    with op.batch_alter_table('suppliers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suppliers_kind'), ['kind'], unique=False)

    op.create_table('components',
    sa.Column('part_no', sa.String(length=64), nullable=False),
    sa.Column('supplier_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('unit_cost', sa.Numeric(precision=14, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers.id'], name=op.f('fk_components_supplier_id_suppliers')),
    sa.PrimaryKeyConstraint('part_no', name=op.f('pk_components'))
    )
    with op.batch_alter_table('components', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_components_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_components_supplier_id'), ['supplier_id'], unique=False)

    op.create_table('listings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('market', sa.String(length=2), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('price', sa.Numeric(precision=18, scale=3), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('availability', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['market'], ['markets.code'], name=op.f('fk_listings_market_markets')),
    sa.ForeignKeyConstraint(['model'], ['products.model'], name=op.f('fk_listings_model_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_listings')),
    sa.UniqueConstraint('model', 'market', name=op.f('uq_listings_model_market')),
    sa.UniqueConstraint('sku', name=op.f('uq_listings_sku'))
    )
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_listings_availability'), ['availability'], unique=False)
        batch_op.create_index(batch_op.f('ix_listings_market'), ['market'], unique=False)
        batch_op.create_index(batch_op.f('ix_listings_model'), ['model'], unique=False)

    op.create_table('partners',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('founded_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('stage', sa.String(length=24), nullable=False),
    sa.Column('contact_role', sa.String(length=64), nullable=False),
    sa.Column('contact_email', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['country'], ['markets.code'], name=op.f('fk_partners_country_markets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partners')),
    sa.UniqueConstraint('name', name=op.f('uq_partners_name'))
    )
    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partners_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_partners_stage'), ['stage'], unique=False)

    op.create_table('product_markets',
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('market', sa.String(length=2), nullable=False),
    sa.ForeignKeyConstraint(['market'], ['markets.code'], name=op.f('fk_product_markets_market_markets')),
    sa.ForeignKeyConstraint(['model'], ['products.model'], name=op.f('fk_product_markets_model_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model', 'market', name=op.f('pk_product_markets'))
    )
    with op.batch_alter_table('product_markets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_product_markets_market'), ['market'], unique=False)

    op.create_table('bom_lines',
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('part_no', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['model'], ['products.model'], name=op.f('fk_bom_lines_model_products'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['part_no'], ['components.part_no'], name=op.f('fk_bom_lines_part_no_components')),
    sa.PrimaryKeyConstraint('model', 'part_no', name=op.f('pk_bom_lines'))
    )
    with op.batch_alter_table('bom_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bom_lines_part_no'), ['part_no'], unique=False)

    op.create_table('investment_rounds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('partner_id', sa.String(length=64), nullable=False),
    sa.Column('series', sa.String(length=24), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('pre_money', sa.Numeric(precision=20, scale=2), nullable=False),
    sa.Column('raised', sa.Numeric(precision=20, scale=2), nullable=False),
    sa.Column('brand_amount', sa.Numeric(precision=20, scale=2), nullable=False),
    sa.Column('post_money', sa.Numeric(precision=20, scale=2), nullable=False),
    sa.Column('brand_stake_after', sa.Numeric(precision=12, scale=10), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_investment_rounds_partner_id_partners'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_investment_rounds'))
    )
    with op.batch_alter_table('investment_rounds', schema=None) as batch_op:
        batch_op.create_index('ix_investment_rounds_partner_closed', ['partner_id', 'closed_on'], unique=False)

    op.create_table('partner_exits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('partner_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('exited_on', sa.Date(), nullable=False),
    sa.Column('valuation', sa.Numeric(precision=20, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('venue', sa.String(length=64), nullable=False),
    sa.Column('brand_stake', sa.Numeric(precision=12, scale=10), nullable=False),
    sa.Column('brand_proceeds', sa.Numeric(precision=20, scale=2), nullable=True),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_partner_exits_partner_id_partners'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_exits')),
    sa.UniqueConstraint('partner_id', name=op.f('uq_partner_exits_partner_id'))
    )
    op.create_table('stake_overrides',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('partner_id', sa.String(length=64), nullable=False),
    sa.Column('round_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stake_after', sa.Numeric(precision=12, scale=10), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_stake_overrides_partner_id_partners'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['round_id'], ['investment_rounds.id'], name=op.f('fk_stake_overrides_round_id_investment_rounds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stake_overrides'))
    )
    with op.batch_alter_table('stake_overrides', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stake_overrides_partner_id'), ['partner_id'], unique=False)

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('design_ref', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('target_price', sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.add_column(sa.Column('price_currency', sa.String(length=3), server_default='USD', nullable=False))
        batch_op.add_column(sa.Column('forecast_volume', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index(batch_op.f('ix_products_category'), ['category'], unique=False)

    op.bulk_insert(categories, [{"slug": s, "name": n, "family": f} for s, n, f in CATEGORIES])
    op.bulk_insert(markets, [
        {"code": c, "alpha3": a3, "numeric": num, "name": name, "currency": cur, "language": lang, "region": region,
         "cell": CELL_OF_REGION[region] if c not in CELL_OVERRIDES else CELL_OVERRIDES[c],
         "cert_profile": [BRAND_REQUIREMENT, *PROFILES.get(c, PROFILES.get(region, []))]}
        for c, a3, num, name, cur, lang, region in MARKETS
    ])


def downgrade() -> None:
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_products_category'))
        batch_op.drop_column('forecast_volume')
        batch_op.drop_column('price_currency')
        batch_op.drop_column('target_price')
        batch_op.drop_column('design_ref')

    with op.batch_alter_table('stake_overrides', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stake_overrides_partner_id'))

    op.drop_table('stake_overrides')
    op.drop_table('partner_exits')
    with op.batch_alter_table('investment_rounds', schema=None) as batch_op:
        batch_op.drop_index('ix_investment_rounds_partner_closed')

    op.drop_table('investment_rounds')
    with op.batch_alter_table('bom_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bom_lines_part_no'))

    op.drop_table('bom_lines')
    with op.batch_alter_table('product_markets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_markets_market'))

    op.drop_table('product_markets')
    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partners_stage'))
        batch_op.drop_index(batch_op.f('ix_partners_kind'))

    op.drop_table('partners')
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_listings_model'))
        batch_op.drop_index(batch_op.f('ix_listings_market'))
        batch_op.drop_index(batch_op.f('ix_listings_availability'))

    op.drop_table('listings')
    with op.batch_alter_table('components', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_components_supplier_id'))
        batch_op.drop_index(batch_op.f('ix_components_kind'))

    op.drop_table('components')
    with op.batch_alter_table('suppliers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suppliers_kind'))

    op.drop_table('suppliers')
    with op.batch_alter_table('markets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_markets_cell'))

    op.drop_table('markets')
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_categories_family'))

    op.drop_table('categories')
