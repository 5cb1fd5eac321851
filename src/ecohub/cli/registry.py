"""CLI of the ecosystem registry: partners, rounds, portfolio, markets, categories, listings, catalogue, KPIs."""

from __future__ import annotations

from pathlib import Path

import typer

from ecohub.cli.common import DataDir, JsonOut, completer, emit, emit_page, handle_errors, open_services

partner_app = typer.Typer(help="partners: registry, rounds, cap table, exits", no_args_is_help=True)
round_app = typer.Typer(help="investment rounds (the brand's stake is computed)", no_args_is_help=True)
market_app = typer.Typer(help="the markets (ISO 3166) with currency, cell and certification profile",
                         no_args_is_help=True)
category_app = typer.Typer(help="the product category taxonomy", no_args_is_help=True)
listing_app = typer.Typer(help="channel listings per market", no_args_is_help=True)
PriceOverride = typer.Option(None, "--price-override", help="the reason to accept a price outside the pricing "
                             "policy (audited)")
catalogue_app = typer.Typer(help="catalogue queries", no_args_is_help=True)
PartnerArg = typer.Argument(..., help="partner id", autocompletion=completer("partner"))


def register(app: typer.Typer) -> None:
    """Attach the sub-apps and commands."""
    app.add_typer(partner_app, name="partner")
    app.add_typer(round_app, name="round")
    app.add_typer(market_app, name="market")
    app.add_typer(category_app, name="category")
    app.add_typer(listing_app, name="listing")
    app.add_typer(catalogue_app, name="catalogue")
    app.command("portfolio")(portfolio)
    app.command("kpi")(kpi)


@partner_app.command("add")
@handle_errors
def partner_add(name: str, country: str = typer.Option(..., "--country", help="ISO 3166 alpha-2"),
                founded: str = typer.Option(..., "--founded", help="YYYY-MM-DD"),
                partner_id: str | None = typer.Option(None, "--id"),
                kind: str = typer.Option("ecosystem", "--kind", help="ecosystem or developer"),
                contact_role: str = typer.Option("", "--contact-role"),
                contact_email: str = typer.Option("", "--contact-email", help="a business role address"),
                data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Register a partner company or developer."""
    emit(open_services(data_dir).ecosystem.partners.add(
        name=name, country=country, founded_on=founded, partner_id=partner_id, kind=kind,
        contact_role=contact_role, contact_email=contact_email, actor="cli"), as_json=as_json)


@partner_app.command("list")
@handle_errors
def partner_list(kind: str | None = typer.Option(None, "--kind"), stage: str | None = typer.Option(None, "--stage"),
                 country: str | None = typer.Option(None, "--country"),
                 limit: int = typer.Option(1000, "--limit"), offset: int = typer.Option(0, "--offset", min=0),
                 everything: bool = typer.Option(False, "--all", help="every partner, not only the first --limit"),
                 data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Partners with kind, country and stage."""
    partners = open_services(data_dir).ecosystem.partners
    emit_page(lambda skip, n: partners.list(kind=kind, stage=stage, country=country, limit=n, offset=skip),
              limit=limit, offset=offset, everything=everything, as_json=as_json,
              columns=["id", "name", "kind", "country", "founded_on", "stage"])


@partner_app.command("show")
@handle_errors
def partner_show(partner_id: str = PartnerArg, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """One partner with its rounds and exit."""
    emit(open_services(data_dir).ecosystem.partners.get(partner_id), as_json=as_json)


@partner_app.command("cap-table")
@handle_errors
def partner_cap_table(partner_id: str = PartnerArg, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Every holder's stake after each round (computed from the rounds)."""
    table = open_services(data_dir).ecosystem.partners.cap_table(partner_id)
    if as_json:
        emit(table, as_json=True)
        return
    emit([{"round": f"{r['series']} {r['closed_on']}", "post_money": f"{r['post_money']} {r['currency']}",
           "brand %": r["stakes_percent"].get("brand", "0"), "holders": r["stakes_percent"]} for r in table["rounds"]],
         as_json=False, title=f"cap table of {partner_id}")


@partner_app.command("exit")
@handle_errors
def partner_exit(partner_id: str = PartnerArg, kind: str = typer.Option(..., "--kind", help="ipo or acquisition"),
                 date: str = typer.Option(..., "--date"), valuation: str = typer.Option(..., "--valuation"),
                 currency: str = typer.Option("USD", "--currency"), venue: str = typer.Option("", "--venue"),
                 data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Record an IPO or an acquisition."""
    emit(open_services(data_dir).ecosystem.partners.record_exit(
        partner_id, kind=kind, exited_on=date, valuation=valuation, currency=currency, venue=venue, actor="cli"),
        as_json=as_json)


@round_app.command("add")
@handle_errors
def round_add(partner_id: str = PartnerArg, series: str = typer.Option(..., "--series", help="seed, series_a, ..."),
              date: str = typer.Option(..., "--date", help="closing date YYYY-MM-DD"),
              pre_money: str = typer.Option(..., "--pre-money"), raised: str = typer.Option(..., "--raised"),
              brand: str = typer.Option("0", "--brand", help="the brand's participation in the amount raised"),
              currency: str = typer.Option("USD", "--currency"),
              override_reason: str | None = typer.Option(None, "--override-reason",
                                                         help="record an audited exception to the < 50% rule"),
              data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Record a round; the brand's stake after it is computed."""
    emit(open_services(data_dir).ecosystem.partners.add_round(
        partner_id, series=series, closed_on=date, pre_money=pre_money, raised=raised, brand_amount=brand,
        currency=currency, override_reason=override_reason, actor="cli"), as_json=as_json)


@round_app.command("list")
@handle_errors
def round_list(partner_id: str = PartnerArg, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Rounds of a partner."""
    emit(open_services(data_dir).ecosystem.partners.rounds(partner_id), as_json=as_json,
         columns=["id", "series", "closed_on", "currency", "pre_money", "raised", "brand_amount", "post_money",
                  "brand_stake_percent"])


@handle_errors
def portfolio(history: bool = typer.Option(False, "--history", help="value after each round/exit date"),
              data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Portfolio value: the brand's stake * latest valuation, per partner and in total."""
    partners = open_services(data_dir).ecosystem.partners
    if history:
        emit(partners.portfolio_history(), as_json=as_json, columns=["date", "partners", "total"])
        return
    data = partners.portfolio()
    if as_json:
        emit(data, as_json=True)
        return
    emit(data["partners"], as_json=False, columns=["partner_id", "brand_percent", "valuation", "currency", "value",
                                                   "basis"])
    emit({"total": data["total"], "realised": data["realised"]}, as_json=False)


@market_app.command("list")
@handle_errors
def market_list(cell: str | None = typer.Option(None, "--cell"), region: str | None = typer.Option(None, "--region"),
                data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Markets with currency, language, cell and certification profile."""
    emit(open_services(data_dir).ecosystem.markets.list(cell=cell, region=region), as_json=as_json,
         columns=["code", "name", "currency", "language", "region", "cell", "cert_profile"])


@market_app.command("show")
@handle_errors
def market_show(code: str, data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """One market."""
    emit(open_services(data_dir).ecosystem.markets.get(code), as_json=as_json)


@category_app.command("list")
@handle_errors
def category_list(data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """The taxonomy with product counts."""
    emit(open_services(data_dir).ecosystem.catalogue.categories(), as_json=as_json,
         columns=["slug", "name", "family", "products"])


@listing_app.command("add")
@handle_errors
def listing_add(model: str, market: str, price: str = typer.Option(..., "--price", help="in the market's currency"),
                sku: str | None = typer.Option(None, "--sku"),
                availability: str = typer.Option("in_stock", "--availability"),
                price_override: str | None = PriceOverride,
                data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """List an approved product in a market it is certified for, at a price the pricing policy allows."""
    emit(open_services(data_dir).ecosystem.listings.add(model, market, price=price, sku=sku,
                                                        availability=availability, actor="cli",
                                                        price_override=price_override), as_json=as_json)


@listing_app.command("list")
@handle_errors
def listing_list(model: str | None = typer.Option(None, "--model"), market: str | None = typer.Option(None, "--market"),
                 partner: str | None = typer.Option(None, "--partner"),
                 availability: str | None = typer.Option(None, "--availability"),
                 limit: int = typer.Option(1000, "--limit"), offset: int = typer.Option(0, "--offset", min=0),
                 everything: bool = typer.Option(False, "--all", help="every listing, not only the first --limit"),
                 data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Listings."""
    listings = open_services(data_dir).ecosystem.listings
    emit_page(lambda skip, n: listings.list(model=model, market=market, partner_id=partner,
                                            availability=availability, limit=n, offset=skip),
              limit=limit, offset=offset, everything=everything, as_json=as_json,
              columns=["id", "model", "market", "sku", "price", "currency", "availability", "reason"])


@listing_app.command("set")
@handle_errors
def listing_set(listing_id: int, price: str | None = typer.Option(None, "--price"),
                availability: str | None = typer.Option(None, "--availability"),
                price_override: str | None = PriceOverride,
                data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Change a listing's price (checked against the pricing policy) or availability."""
    emit(open_services(data_dir).ecosystem.listings.update(listing_id, price=price, availability=availability,
                                                           actor="cli", price_override=price_override),
         as_json=as_json)


@catalogue_app.command("search")
@handle_errors
def catalogue_search(category: str | None = typer.Option(None, "--category"),
                     family: str | None = typer.Option(None, "--family"),
                     market: str | None = typer.Option(None, "--market", help="listed in this market"),
                     partner: str | None = typer.Option(None, "--partner"),
                     stage: str | None = typer.Option(None, "--stage"), text: str | None = typer.Option(None, "--q"),
                     limit: int = typer.Option(50, "--limit"), offset: int = typer.Option(0, "--offset"),
                     data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Products by category, family, market, partner, stage or text."""
    result = open_services(data_dir).ecosystem.catalogue.search(
        category=category, family=family, market=market, partner_id=partner, stage=stage, text=text, limit=limit,
        offset=offset)
    if as_json:
        emit(result, as_json=True)
        return
    emit(result["items"], as_json=False, columns=["model", "name", "category", "partner_id", "stage"],
         title=f"{result['total']} product(s)")


@catalogue_app.command("counts")
@handle_errors
def catalogue_counts(by: str = typer.Option("category", "--by", help="category, family, stage, partner or market"),
                     data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """Number of products per group."""
    counts = open_services(data_dir).ecosystem.catalogue.counts(by)
    emit(counts if as_json else [{by: k, "products": v} for k, v in sorted(counts.items())], as_json=as_json)


@handle_errors
def kpi(data_dir: Path | None = DataDir, as_json: bool = JsonOut) -> None:
    """The operator's KPIs."""
    data = open_services(data_dir).ecosystem.kpis.all()
    if as_json:
        emit(data, as_json=True)
        return
    pricing = data.pop("pricing_by_market", {})
    emit({**data, "portfolio_history": data["portfolio_history"][-5:]}, as_json=False)
    emit([{"market": code, **row} for code, row in pricing.items()], as_json=False,
         columns=["market", "currency", "listings", "avg_price_usd", "avg_margin", "min_margin", "max_margin",
                  "outside_policy"], title="price and net margin per market")
