"""Generate minisumm's sample dataset: 400 short invented news stories, each with 2-4 highlights.

    python minisumm/sample_data/make_sample.py      # rewrites train.jsonl, validation.jsonl, test.jsonl here

Every story is this project's own writing, assembled from templates and seeded random choices (invented
towns, people, teams, companies and numbers); nothing is copied from a news corpus. The rows look like
CNN/DailyMail's (`id`, `article`, `highlights` with one sentence a line) so that every part of minisumm
runs on them offline. The facts in each highlight (names and numbers) appear in its article, so a small
model can learn to find and compress them; the background sentences around them never reach a highlight.
`check()` asserts this for every story before anything is written. The output is deterministic: the same
script always writes the same bytes.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

SEED = 20240607
N_STORIES = 400
SHARES = {"train": 320, "validation": 40, "test": 40}
MIN_WORDS, MAX_WORDS = 80, 200  # the length aimed at; a story's own sentences can take it a little past 200
MAX_FILLER = 5  # generic sentences per story at most, so that no story is mostly filler

TOWNS = ["Ashcombe", "Brackenford", "Calder Vale", "Dunmere", "Eastholm", "Fenwick Green", "Glenarrow",
         "Hollin Cross", "Kestrel Bay", "Lowmoor", "Millbrook", "Northcliff", "Oakhaven", "Pennyford",
         "Redwater", "Rosethorn", "Saltmarsh", "Thistlewood", "Upper Brindle", "Valewick", "Westerby",
         "Yarrowfield", "Amberley Heath", "Coldharbour Mill", "Greyhaven", "Larkspur", "Marrowdale",
         "Stonebridge Vale", "Whitmoor", "Ellesby"]
REGIONS = ["North Avonmere", "the Harland Valley", "East Calloway", "the Brindle Hills", "West Ardith",
           "Southmere"]
FIRST = ["Amara", "Ben", "Chloé", "Dmitri", "Elena", "Farid", "Grace", "Hiroshi", "Inès", "Jonas", "Kofi",
         "Leila", "Mateo", "Niamh", "Oskar", "Priya", "Rafael", "Sofia", "Tomás", "Ursula", "Wei", "Yusuf",
         "Zoë", "Hannah", "Callum", "Aisha", "Declan", "Maja", "Samuel", "Ruth"]
LAST = ["Abbott", "Brennan", "Castillo", "Dubois", "Eriksen", "Fairweather", "Gallagher", "Hartley", "Iqbal",
        "Jansen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "O'Connell", "Patel", "Quinn", "Rossi",
        "Sandoval", "Thornton", "Underwood", "Varga", "Whitlock", "Yilmaz", "Zielinski", "Okafor", "Müller",
        "Núñez", "Achterberg", "Mensah"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

# Sentences that fit any story and never carry a highlight's facts.
GENERIC_FILLER = [
    "Residents said the news had been the main topic of conversation in shops and cafes all week.",
    "Local radio stations reported a steady stream of calls from listeners wanting to share their views.",
    "Several people who spoke to reporters asked not to be named.",
    "Social media posts about the story were shared thousands of times within a few hours.",
    "Officials said a fuller statement would be published on the council website in due course.",
    "It is not the first time the area has made headlines this year.",
    "Neighbouring communities are expected to watch the outcome closely.",
    "A spokesperson declined to comment further while details were still being confirmed.",
    "Long-time residents said they could not remember anything quite like it.",
    "The story was first reported by a local newsletter run by volunteers.",
    "Reporters were unable to reach several of those involved for comment.",
    "The details were confirmed in a short statement late in the afternoon.",
    "Opinions in the town appeared to be divided.",
    "Some residents said they had expected the news for months.",
    "Others said they were still waiting for a clear explanation.",
    "A meeting to discuss the matter is planned at the community centre.",
    "The local newspaper has asked readers to send in their memories and photographs.",
    "Visitors to the area were largely unaware of the events, according to shopkeepers.",
    "A petition on a related issue has gathered several hundred signatures.",
    "The full figures are expected to be published next month.",
]


def count(r: random.Random, low: int, high: int) -> str:
    """A random whole number written as news copy writes it: 53,947."""
    return f"{r.randint(low, high):,}"


def person(r: random.Random) -> str:
    return f"{r.choice(FIRST)} {r.choice(LAST)}"


def pick(r: random.Random, templates: list[str], facts: dict) -> str:
    return r.choice(templates).format(**facts)


def weather(r):
    f = {"town": r.choice(TOWNS), "region": r.choice(REGIONS), "day": r.choice(DAYS), "who": person(r),
         "next": r.choice(DAYS)}
    kind = r.choice(["rain", "snow", "heat", "wind"])
    if kind == "rain":
        f.update(mm=r.randint(35, 140), homes=r.randint(6, 180), roads=r.randint(2, 19))
        lead = ["Heavy rain flooded {homes} homes in {town} on {day} after {mm}mm fell in less than a day.",
                "More than {mm}mm of rain fell on {town} on {day}, leaving {homes} homes flooded."]
        core = ["Emergency crews closed {roads} roads as rivers rose across {region}.",
                "\"We have not seen water this high in a generation,\" said {who}, who leads the council's "
                "flood response team. \"Please stay away from riverbanks until the levels fall.\"",
                "Forecasters expect more rain on {next}, though less than this week's downpour."]
        highlights = ["{mm}mm of rain fell on {town} on {day}, flooding {homes} homes.",
                      "Emergency crews closed {roads} roads across {region}.",
                      "{who} told residents to stay away from riverbanks.",
                      "More rain is expected on {next}."]
    elif kind == "snow":
        f.update(cm=r.randint(8, 45), schools=r.randint(3, 40), buses=r.randint(10, 90))
        lead = ["Snow {cm}cm deep closed {schools} schools in and around {town} on {day}.",
                "{town} woke to {cm}cm of snow on {day}, and {schools} schools stayed shut."]
        core = ["Bus operators cancelled {buses} services, and gritters worked through the night on the hill "
                "roads of {region}.",
                "\"Our crews have been out since four in the morning,\" said {who}, the council's highways "
                "manager. \"Only travel if you really must.\"",
                "A thaw is forecast from {next}."]
        highlights = ["{cm}cm of snow closed {schools} schools around {town} on {day}.",
                      "{buses} bus services were cancelled.",
                      "Highways manager {who} urged people to travel only if they must.",
                      "A thaw is forecast from {next}."]
    elif kind == "heat":
        f.update(temp=r.randint(33, 41), record=r.randint(1911, 2019), calls=count(r, 40, 400))
        lead = ["{town} recorded {temp}C on {day}, its hottest day since {record}.",
                "Temperatures in {town} reached {temp}C on {day}, beating a record set in {record}."]
        core = ["Ambulance crews in {region} answered {calls} heat-related calls in a single day.",
                "\"Drink water, find shade, and check on elderly neighbours,\" said {who}, a doctor at the "
                "local hospital.",
                "Cooler air is expected to arrive on {next}."]
        highlights = ["{town} reached {temp}C on {day}, the hottest since {record}.",
                      "Ambulances answered {calls} heat-related calls.",
                      "Doctor {who} urged people to check on elderly neighbours.",
                      "Cooler air is due on {next}."]
    else:
        f.update(mph=r.randint(60, 105), trees=r.randint(12, 260), homes=count(r, 300, 9000))
        lead = ["Gusts of {mph}mph brought down {trees} trees in {town} on {day}.",
                "A storm with winds of up to {mph}mph swept through {town} on {day}, felling {trees} trees."]
        core = ["About {homes} homes across {region} lost power for several hours.",
                "\"Engineers are working to reconnect everyone as quickly as they safely can,\" said {who} of "
                "the regional power network.",
                "Calmer weather is forecast from {next}."]
        highlights = ["Winds of {mph}mph felled {trees} trees in {town} on {day}.",
                      "About {homes} homes lost power.",
                      "{who} said engineers were reconnecting homes.",
                      "Calmer weather is forecast from {next}."]
    background = ["Weather stations in {region} have kept daily records for more than a century.",
                  "Insurance companies said it was too early to estimate the cost of the damage.",
                  "Volunteers handed out hot drinks at the town hall throughout the day."]
    return f, lead, core, background, highlights


def sports(r):
    sport, unit = r.choice([("football", "goal"), ("hockey", "goal"), ("netball", "goal")])
    home, away = r.sample(TOWNS, 2)
    suffix = r.choice(["Rovers", "Athletic", "United", "Rangers", "Harriers", "Wanderers"])
    win, lose = (r.randint(2, 6), r.randint(0, 1)) if sport != "netball" else (r.randint(40, 62), r.randint(25, 39))
    f = {"home": f"{home} {suffix}", "away": f"{away} Town", "sport": sport, "win": win, "lose": lose,
         "day": r.choice(DAYS[4:]), "scorer": person(r), "minute": r.randint(5, 88), "coach": person(r),
         "place": r.randint(1, 4), "crowd": count(r, 800, 14000), "next": f"{r.choice(TOWNS)} City",
         "unit": unit}
    lead = ["{home} beat {away} {win}-{lose} on {day} to move up to number {place} in the {sport} league.",
            "{home} moved to number {place} in the league after a {win}-{lose} win over {away} on {day}."]
    core = ["{scorer} opened the scoring after {minute} minutes, and the home side never looked back.",
            "A crowd of {crowd} watched the match.",
            "\"The players showed real character today,\" said coach {coach}. \"We take it one game at a time.\"",
            "{home} face {next} next."]
    highlights = ["{home} beat {away} {win}-{lose} on {day}.",
                  "{scorer} scored the first {unit} after {minute} minutes.",
                  "The win lifts {home} to number {place} in the league.",
                  "{home} play {next} next."]
    background = ["The two clubs have met more than forty times since the league was founded.",
                  "Ticket prices were held at last season's level for the third year running.",
                  "Rain before kick-off left parts of the pitch heavy."]
    return f, lead, core, background, highlights


def science(r):
    topic = r.choice([
        ("bees", "visit {pct}% more flowers in gardens without pesticides"),
        ("river otters", "have returned to {pct}% of the streams they left in the 1980s"),
        ("a new battery material", "keeps {pct}% of its charge after a thousand cycles"),
        ("sleep", "improves memory test scores by {pct}% in teenagers"),
        ("seagrass meadows", "store {pct}% more carbon than scientists had assumed"),
        ("a distant comet", "loses {pct}% of its ice each time it passes the Sun"),
    ])
    f = {"topic": topic[0], "uni": f"University of {r.choice(TOWNS)}", "lead": person(r), "pct": r.randint(12, 87),
         "n": count(r, 40, 2400), "journal": r.choice(["Field Studies Letters", "the Journal of Open Science",
                                                         "Applied Discovery", "Natural Systems Review"]),
         "years": r.randint(2, 9), "month": r.choice(MONTHS)}
    f["finding"] = topic[1].format(pct=f["pct"])
    lead = ["Researchers at the {uni} have found that {topic} {finding}.",
            "A study from the {uni} suggests that {topic} {finding}."]
    core = ["The team, led by {lead}, studied {n} samples over {years} years.",
            "The results were published in {journal} in {month}.",
            "\"We were surprised by how clear the effect was,\" said {lead}. \"Now we need to understand why.\""]
    highlights = ["A {uni} study finds that {topic} {finding}.",
                  "The team led by {lead} studied {n} samples over {years} years.",
                  "The work was published in {journal}."]
    background = ["Other groups have reported smaller effects in earlier work.",
                  "The research was paid for by public grants.",
                  "Independent experts said the study should be repeated elsewhere."]
    return f, lead, core, background, highlights


def business(r):
    trade = r.choice(["Foods", "Logistics", "Textiles", "Robotics", "Ceramics", "Brewing"])
    company = f"{r.choice(TOWNS).split()[0]} {trade}"
    f = {"company": company, "town": r.choice(TOWNS), "jobs": count(r, 20, 900), "money": r.randint(3, 180),
         "boss": person(r), "union": person(r), "year": r.choice([2025, 2026, 2027]), "pct": r.randint(4, 38)}
    if r.random() < 0.5:
        lead = ["{company} will create {jobs} jobs at a new £{money} million site in {town}.",
                "{company} is to open a £{money} million factory in {town}, bringing {jobs} jobs."]
        core = ["The site is due to open in {year}.",
                "\"{town} has the skills and the transport links we need,\" said chief executive {boss}.",
                "Sales at the company rose {pct}% last year."]
        highlights = ["{company} will create {jobs} jobs in {town}.",
                      "The £{money} million site is due to open in {year}.",
                      "Sales rose {pct}% last year, said chief executive {boss}."]
    else:
        lead = ["{company} will close its {town} plant, putting {jobs} jobs at risk.",
                "Up to {jobs} jobs are at risk after {company} said it would shut its plant in {town}."]
        core = ["The company blamed a {pct}% fall in orders and £{money} million of losses.",
                "The plant will close by the end of {year}.",
                "Union representative {union} called the decision \"a hammer blow for the town\"."]
        highlights = ["{company} will close its {town} plant, risking {jobs} jobs.",
                      "It blamed a {pct}% fall in orders and £{money} million of losses.",
                      "Union representative {union} called it a hammer blow."]
    background = ["The company was founded as a family business more than fifty years ago.",
                  "Shares in the sector have been volatile this year.",
                  "Analysts said energy costs remained the biggest worry for manufacturers."]
    return f, lead, core, background, highlights


def council(r):
    plan = r.choice(["a new library", "a network of cycle lanes", "a swimming pool", "480 new homes",
                     "a riverside park", "a bus station"])
    yes = r.randint(14, 30)
    f = {"plan": plan, "town": r.choice(TOWNS), "yes": yes, "no": r.randint(2, yes - 1), "cost": r.randint(2, 60),
         "leader": person(r), "critic": person(r), "month": r.choice(MONTHS), "day": r.choice(DAYS[:5])}
    lead = ["{town} councillors voted {yes} to {no} on {day} to approve {plan}.",
            "Plans for {plan} in {town} were approved on {day} by {yes} votes to {no}."]
    core = ["The project will cost £{cost} million, and work is due to start in {month}.",
            "\"This is an investment in the next generation,\" said council leader {leader}.",
            "Councillor {critic}, who voted against, said the money would be better spent on road repairs."]
    highlights = ["{town} council approved {plan} by {yes} votes to {no}.",
                  "The £{cost} million project should start in {month}.",
                  "Councillor {critic} said the money should go on road repairs."]
    background = ["A public consultation drew hundreds of written responses.",
                  "The council has faced budget pressures for several years.",
                  "The meeting ran late into the evening."]
    return f, lead, core, background, highlights


def transport(r):
    town, other = r.sample(TOWNS, 2)
    f = {"town": town, "other": other, "weeks": r.randint(2, 14), "cost": r.randint(2, 95),
         "daily": count(r, 1200, 42000), "who": person(r), "month": r.choice(MONTHS), "mins": r.randint(8, 35)}
    if r.random() < 0.5:
        lead = ["The bridge between {town} and {other} will close for {weeks} weeks from {month} for repairs.",
                "Drivers face a {weeks}-week closure of the {town} to {other} bridge from {month}."]
        core = ["About {daily} vehicles use the bridge every day, and diversions will add around {mins} "
                "minutes to journeys.",
                "The repairs will cost £{cost} million.",
                "\"We know this is disruptive, but the work cannot wait,\" said {who}, the project engineer."]
        highlights = ["The {town} to {other} bridge closes for {weeks} weeks from {month}.",
                      "Diversions will add around {mins} minutes for {daily} daily vehicles.",
                      "Project engineer {who} said the £{cost} million work cannot wait."]
    else:
        lead = ["A new rail link between {town} and {other} will open in {month}, cutting the journey to {mins} "
                "minutes.",
                "Trains between {town} and {other} will take just {mins} minutes when a new line opens in {month}."]
        core = ["The £{cost} million line is expected to carry {daily} passengers a day.",
                "\"This changes how people in both towns can live and work,\" said {who}, the rail operator's "
                "director."]
        highlights = ["A new rail line links {town} and {other} from {month}.",
                      "The journey will take {mins} minutes.",
                      "The £{cost} million line expects {daily} passengers a day."]
    background = ["Commuter groups have campaigned on the issue for years.",
                  "Traffic on the main roads has grown steadily over the past decade.",
                  "The work is part of a wider regional transport plan."]
    return f, lead, core, background, highlights


def community(r):
    event = r.choice(["a sponsored walk", "a charity concert", "a bake sale marathon", "a fun run",
                      "a 24-hour swim"])
    cause = r.choice(["the children's ward", "the local hospice", "the town food bank", "a mountain rescue team",
                      "the animal shelter"])
    f = {"event": event, "cause": cause, "town": r.choice(TOWNS), "money": count(r, 1200, 98000),
         "people": count(r, 30, 2500), "who": person(r), "age": r.randint(9, 94), "day": r.choice(DAYS)}
    lead = ["{event} in {town} raised £{money} for {cause} on {day}.",
            "Organisers say {event} on {day} raised £{money} for {cause} in {town}."]
    core = ["About {people} people took part.",
            "The idea came from {who}, {age}, who said: \"I just wanted to give something back.\"",
            "The money will pay for new equipment and volunteer training."]
    highlights = ["{event} in {town} raised £{money} for {cause}.",
                  "About {people} people took part on {day}.",
                  "Organiser {who}, {age}, wanted to give something back."]
    background = ["The charity relies almost entirely on donations.",
                  "Similar events are planned across the region this summer.",
                  "Local businesses donated prizes for a raffle."]
    return f, lead, core, background, highlights


def culture(r):
    kind = r.choice(["festival", "exhibition", "book prize"])
    f = {"town": r.choice(TOWNS), "who": person(r), "visitors": count(r, 2000, 85000), "day": r.choice(DAYS),
         "year": r.randint(3, 40), "money": count(r, 1000, 25000), "month": r.choice(MONTHS)}
    if kind == "festival":
        lead = ["The {town} music festival drew {visitors} visitors over the weekend, a record in its "
                "{year}-year history."]
        core = ["Director {who} said next year's festival will run from {month}.",
                "\"The atmosphere on {day} night was something special,\" {who} said."]
        highlights = ["The {town} music festival drew a record {visitors} visitors.",
                      "Next year's festival will run from {month}, said director {who}."]
    elif kind == "exhibition":
        lead = ["An exhibition of paintings by {who} opens at the {town} gallery on {day}."]
        core = ["The show brings together work from {year} years of painting and runs until {month}.",
                "Organisers expect around {visitors} visitors."]
        highlights = ["Paintings by {who} go on show in {town} on {day}.",
                      "The exhibition runs until {month} and expects {visitors} visitors."]
    else:
        lead = ["{who} has won the {town} book prize and £{money} for a first novel."]
        core = ["The judges read {year} shortlisted books before choosing the winner on {day}.",
                "\"I wrote most of it on the bus to work,\" said {who}."]
        highlights = ["{who} won the {town} book prize and £{money}.",
                      "The judges chose from {year} shortlisted books."]
    background = ["Arts funding in the region has fallen in recent years.",
                  "Tickets for several events sold out within hours.",
                  "Local hotels reported a busy weekend."]
    return f, lead, core, background, highlights


def nature(r):
    animal = r.choice(["a seal pup", "a barn owl", "a young deer", "a hedgehog", "a swan"])
    f = {"animal": animal, "town": r.choice(TOWNS), "who": person(r), "count": count(r, 20, 3000),
         "trees": count(r, 500, 20000), "day": r.choice(DAYS), "weeks": r.randint(2, 10)}
    if r.random() < 0.5:
        lead = ["Rescuers freed {animal} caught in fishing line near {town} on {day}.",
                "{animal} tangled in fishing line was rescued near {town} on {day}."]
        core = ["The animal will spend {weeks} weeks recovering at a rescue centre before release.",
                "\"Please take your rubbish home with you,\" said volunteer {who}."]
        highlights = ["Rescuers freed {animal} from fishing line near {town}.",
                      "It will recover for {weeks} weeks before release.",
                      "Volunteer {who} asked people to take rubbish home."]
    else:
        lead = ["Volunteers planted {trees} trees on the edge of {town} on {day}."]
        core = ["In all, {count} people turned out despite the cold.",
                "\"In twenty years this will be a proper wood,\" said organiser {who}."]
        highlights = ["Volunteers planted {trees} trees near {town} on {day}.",
                      "{count} people took part, said organiser {who}."]
    background = ["Wildlife groups say sightings have increased in recent years.",
                  "The land is owned by a local trust.",
                  "Schools in the area have joined several conservation projects."]
    return f, lead, core, background, highlights


def education(r):
    f = {"town": r.choice(TOWNS), "school": f"{r.choice(TOWNS)} Academy", "head": person(r),
         "pupils": count(r, 120, 1600), "pct": r.randint(51, 99), "teacher": person(r), "year": r.randint(5, 35),
         "month": r.choice(MONTHS)}
    if r.random() < 0.5:
        lead = ["{school} in {town} has been rated outstanding by inspectors."]
        core = ["The school has {pupils} pupils, and {pct}% of them passed their final exams last year.",
                "\"This belongs to the children and the staff,\" said head teacher {head}."]
        highlights = ["Inspectors rated {school} in {town} outstanding.",
                      "{pct}% of its {pupils} pupils passed their final exams.",
                      "Head teacher {head} credited the children and staff."]
    else:
        lead = ["{teacher}, a science teacher at {school}, has won a national teaching award."]
        core = ["{teacher} has taught at the school for {year} years and will receive the award in {month}.",
                "Former pupils wrote letters in support of the nomination."]
        highlights = ["{school} science teacher {teacher} wins a national award.",
                      "{teacher} has taught there for {year} years."]
    background = ["Schools across the country face tight budgets.",
                  "Parents said the news was well deserved.",
                  "The school was founded in the nineteenth century."]
    return f, lead, core, background, highlights


CATEGORIES = [weather, sports, science, business, council, transport, community, culture, nature, education]


def story(r: random.Random) -> tuple[str, list[str]]:
    """One (article, highlights) pair with a varied structure and length."""
    facts, lead, core, background, highlights = r.choice(CATEGORIES)(r)
    article = [pick(r, lead, facts)]
    body = [t.format(**facts) for t in core]
    article += body[:1]
    rest = body[1:] + [t.format(**facts) for t in r.sample(background, r.randint(1, len(background)))]
    r.shuffle(rest)  # quotes, figures and background in a different order each time
    article += rest
    target = r.randint(MIN_WORDS, MAX_WORDS)
    for filler in r.sample(GENERIC_FILLER, MAX_FILLER):
        if len(" ".join(article).split()) >= target:
            break
        if len(" ".join(article + [filler]).split()) <= MAX_WORDS:
            article.insert(r.randint(2, len(article)), filler)
    article = [_capitalise(sentence) for sentence in article]
    if r.random() < 0.3:  # a dateline, as many agency stories open
        article[0] = f"{facts.get('town', r.choice(TOWNS)).upper()} (Minisumm News) -- {article[0]}"
    keep = r.randint(max(2, len(highlights) - 1), len(highlights))  # the last highlights are the least important
    summary = [_capitalise(t.format(**facts)) for t in highlights[:keep]]
    return " ".join(article), summary


def _capitalise(sentence: str) -> str:
    return sentence[0].upper() + sentence[1:]


def check(article: str, highlights: list[str]) -> None:
    """Every number and every capitalised word (but a highlight's first) of the highlights is in the article."""
    words = len(article.split())
    assert MIN_WORDS <= words <= MAX_WORDS + 30, (words, article)
    assert 2 <= len(highlights) <= 4, highlights
    for sentence in highlights:
        for match in re.finditer(r"\d[\d,.]*|\b[A-Z][\w'’]+", sentence):
            if match.start() > 0 or match.group()[0].isdigit():
                assert match.group().rstrip(".,") in article, (match.group(), sentence, article)


def main(out_dir: Path = Path(__file__).parent) -> None:
    """Write train.jsonl, validation.jsonl and test.jsonl (320 / 40 / 40 stories) into `out_dir`."""
    r = random.Random(SEED)
    rows, seen = [], set()
    while len(rows) < N_STORIES:
        article, highlights = story(r)
        if article in seen:
            continue
        seen.add(article)
        check(article, highlights)
        rows.append({"id": f"sample-{len(rows):04d}", "article": article, "highlights": "\n".join(highlights)})
    start = 0
    for split, count in SHARES.items():
        with open(out_dir / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as out:
            for row in rows[start:start + count]:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        start += count


if __name__ == "__main__":
    main()
