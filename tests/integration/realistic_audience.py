"""A synthetic audience that looks like a real customer base, for tests of the
privacy guard at scale (no false positives on the shapes real addresses take).

generate(n, seed=1) returns n (email, name, locale) tuples whose addresses are
distinct (ASCII case-insensitively) and follow real-world patterns: first.last,
firstlast, f.last, last, first_last, first-last, initials and digits, nicknames,
+tags, QQ numbers, role addresses at companies; the big providers and their
country variants, company domains and subdomains, a few internationalized
domains (U-labels); names in their own scripts (the local part stays ASCII).
Suffix pairs are made on purpose: john.smith@x and smith@x, anna+news@x and
news@x, maria@yahoo.com and maria@yahoo.com.br, lena@acme.de and lena@eng.acme.de.

    /usr/bin/python3 realistic_audience.py N PATH [SEED]   # writes email,name,locale CSV
"""
import csv
import random
import sys

# culture: (locales, [(ascii first, native first)], [(ascii last, native last)], order, providers)
# order "fl": "First Last"; "lf": family name first, with a space; "lf0": without one.
CULTURES = {
    "us": (["en"],
           [("john", "John"), ("mary", "Mary"), ("michael", "Michael"), ("jennifer", "Jennifer"),
            ("david", "David"), ("linda", "Linda"), ("james", "James"), ("patricia", "Patricia"),
            ("robert", "Robert"), ("susan", "Susan"), ("william", "William"), ("karen", "Karen"),
            ("chris", "Chris"), ("jessica", "Jessica"), ("daniel", "Daniel"), ("ashley", "Ashley"),
            ("matthew", "Matthew"), ("emily", "Emily"), ("joshua", "Joshua"), ("sarah", "Sarah"),
            ("bob", "Bob"), ("alice", "Alice"), ("kevin", "Kevin"), ("megan", "Megan"), ("tyler", "Tyler")],
           [("smith", "Smith"), ("johnson", "Johnson"), ("williams", "Williams"), ("brown", "Brown"),
            ("jones", "Jones"), ("miller", "Miller"), ("davis", "Davis"), ("wilson", "Wilson"),
            ("anderson", "Anderson"), ("taylor", "Taylor"), ("thomas", "Thomas"), ("moore", "Moore"),
            ("martin", "Martin"), ("jackson", "Jackson"), ("white", "White"), ("harris", "Harris"),
            ("clark", "Clark"), ("lewis", "Lewis"), ("obrien", "O'Brien"), ("mcdonald", "McDonald"),
            ("nguyen", "Nguyen"), ("kim", "Kim"), ("lee", "Lee"), ("walker", "Walker"), ("young", "Young")],
           "fl",
           [("gmail.com", 30), ("yahoo.com", 12), ("hotmail.com", 8), ("outlook.com", 8), ("aol.com", 4),
            ("icloud.com", 6), ("me.com", 2), ("live.com", 3), ("msn.com", 2), ("googlemail.com", 1),
            ("comcast.net", 2), ("initech.com", 2), ("globex.com", 2)]),
    "gb": (["en-GB"],
           [("oliver", "Oliver"), ("amelia", "Amelia"), ("harry", "Harry"), ("isla", "Isla"),
            ("george", "George"), ("ava", "Ava"), ("jack", "Jack"), ("emily", "Emily"), ("charlie", "Charlie"),
            ("sophie", "Sophie"), ("thomas", "Thomas"), ("grace", "Grace"), ("jane", "Jane"), ("siobhan", "Siobhán"),
            ("niamh", "Niamh"), ("rhys", "Rhys"), ("eilidh", "Eilidh"), ("callum", "Callum")],
           [("smith", "Smith"), ("jones", "Jones"), ("taylor", "Taylor"), ("brown", "Brown"),
            ("williams", "Williams"), ("wilson", "Wilson"), ("evans", "Evans"), ("thomas", "Thomas"),
            ("roberts", "Roberts"), ("doe", "Doe"), ("walsh", "Walsh"), ("murphy", "Murphy"),
            ("campbell", "Campbell"), ("hughes", "Hughes"), ("obrien", "O'Brien"), ("patel", "Patel")],
           "fl",
           [("gmail.com", 20), ("yahoo.co.uk", 8), ("hotmail.co.uk", 8), ("outlook.com", 6),
            ("btinternet.com", 4), ("icloud.com", 4), ("mail.bigcorp.co.uk", 4), ("bigcorp.co.uk", 3),
            ("live.co.uk", 2)]),
    "de": (["de", "de", "de-AT"],
           [("juergen", "Jürgen"), ("anna", "Anna"), ("lena", "Lena"), ("lukas", "Lukas"), ("jonas", "Jonas"),
            ("sophie", "Sophie"), ("maximilian", "Maximilian"), ("marie", "Marie"), ("paul", "Paul"),
            ("hannah", "Hannah"), ("felix", "Felix"), ("katharina", "Katharina"), ("uwe", "Uwe"),
            ("sabine", "Sabine"), ("joerg", "Jörg"), ("baerbel", "Bärbel"), ("kai", "Kai"), ("fiona", "Fiona")],
           [("mueller", "Müller"), ("schmidt", "Schmidt"), ("schneider", "Schneider"), ("fischer", "Fischer"),
            ("weber", "Weber"), ("meyer", "Meyer"), ("wagner", "Wagner"), ("becker", "Becker"),
            ("schaefer", "Schäfer"), ("koch", "Koch"), ("weiss", "Weiß"), ("hoffmann", "Hoffmann"),
            ("koehler", "Köhler"), ("vogel", "Vogel"), ("gruber", "Gruber"), ("huber", "Huber"),
            ("boesendorfer", "Bösendorfer"), ("strasser", "Straßer")],
           "fl",
           [("gmx.de", 14), ("web.de", 14), ("t-online.de", 8), ("gmail.com", 12), ("outlook.de", 4),
            ("yahoo.de", 3), ("acme.de", 4), ("eng.acme.de", 3), ("gmx.at", 3), ("bücher.de", 1),
            ("münchen-immobilien.de", 1), ("hotmail.de", 2)]),
    "fr": (["fr"],
           [("francois", "François"), ("helene", "Hélène"), ("jean", "Jean"), ("marie", "Marie"),
            ("louis", "Louis"), ("camille", "Camille"), ("lea", "Léa"), ("hugo", "Hugo"), ("chloe", "Chloé"),
            ("gael", "Gaël"), ("noemie", "Noémie"), ("ann-marie", "Ann-Marie"), ("jean-pierre", "Jean-Pierre")],
           [("martin", "Martin"), ("bernard", "Bernard"), ("dubois", "Dubois"), ("lefevre", "Lefèvre"),
            ("moreau", "Moreau"), ("laurent", "Laurent"), ("girard", "Girard"), ("roux", "Roux"),
            ("faure", "Faure"), ("benali", "Benali"), ("nguyen", "Nguyen"), ("mercier", "Mercier")],
           "fl",
           [("orange.fr", 12), ("free.fr", 10), ("hotmail.fr", 8), ("yahoo.fr", 5), ("gmail.com", 14),
            ("laposte.net", 4), ("sfr.fr", 3), ("outlook.fr", 2)]),
    "es": (["es"],
           [("jose", "José"), ("maria", "María"), ("javier", "Javier"), ("lucia", "Lucía"), ("alvaro", "Álvaro"),
            ("carmen", "Carmen"), ("sergio", "Sergio"), ("ines", "Inés"), ("pablo", "Pablo"), ("nuria", "Nuria")],
           [("garcia", "García"), ("fernandez", "Fernández"), ("lopez", "López"), ("martinez", "Martínez"),
            ("sanchez", "Sánchez"), ("perez", "Pérez"), ("gomez", "Gómez"), ("nunez", "Núñez"),
            ("munoz", "Muñoz"), ("ibanez", "Ibáñez")],
           "fl",
           [("hotmail.es", 10), ("gmail.com", 14), ("yahoo.es", 4), ("outlook.es", 4), ("telefonica.net", 2)]),
    "br": (["pt-BR"],
           [("joao", "João"), ("maria", "Maria"), ("ana", "Ana"), ("pedro", "Pedro"), ("lucas", "Lucas"),
            ("gabriel", "Gabriel"), ("julia", "Júlia"), ("beatriz", "Beatriz"), ("conceicao", "Conceição"),
            ("thiago", "Thiago"), ("leticia", "Letícia")],
           [("silva", "Silva"), ("santos", "Santos"), ("oliveira", "Oliveira"), ("souza", "Souza"),
            ("pereira", "Pereira"), ("lima", "Lima"), ("carvalho", "Carvalho"), ("goncalves", "Gonçalves"),
            ("araujo", "Araújo"), ("ribeiro", "Ribeiro")],
           "fl",
           [("uol.com.br", 8), ("bol.com.br", 6), ("yahoo.com.br", 8), ("hotmail.com", 8), ("gmail.com", 16),
            ("outlook.com.br", 3), ("terra.com.br", 3), ("hotmail.com.br", 2)]),
    "pt": (["pt"],
           [("joao", "João"), ("ines", "Inês"), ("tiago", "Tiago"), ("beatriz", "Beatriz"), ("rui", "Rui"),
            ("mariana", "Mariana")],
           [("ferreira", "Ferreira"), ("costa", "Costa"), ("rodrigues", "Rodrigues"), ("martins", "Martins"),
            ("sousa", "Sousa"), ("goncalves", "Gonçalves")],
           "fl",
           [("sapo.pt", 8), ("gmail.com", 10), ("hotmail.com", 5), ("outlook.pt", 3)]),
    "it": (["en"],
           [("giulia", "Giulia"), ("marco", "Marco"), ("lucia", "Lucia"), ("niccolo", "Niccolò"),
            ("francesca", "Francesca"), ("andrea", "Andrea")],
           [("rossi", "Rossi"), ("russo", "Russo"), ("ferrari", "Ferrari"), ("bianchi", "Bianchi"),
            ("romano", "Romano"), ("colombo", "Colombo")],
           "fl",
           [("libero.it", 8), ("hotmail.it", 5), ("gmail.com", 10), ("virgilio.it", 3), ("yahoo.it", 3)]),
    "ja": (["ja"],
           [("taro", "太郎"), ("hanako", "花子"), ("yuki", "由紀"), ("hiroshi", "浩"), ("sakura", "さくら"),
            ("kenji", "健二"), ("yui", "結衣"), ("haruto", "陽翔"), ("aoi", "葵"), ("shota", "翔太")],
           [("yamada", "山田"), ("sato", "佐藤"), ("suzuki", "鈴木"), ("takahashi", "高橋"), ("tanaka", "田中"),
            ("watanabe", "渡辺"), ("ito", "伊藤"), ("nakamura", "中村"), ("kobayashi", "小林")],
           "lf",
           [("yahoo.co.jp", 12), ("gmail.com", 12), ("outlook.jp", 4), ("docomo.ne.jp", 4), ("icloud.com", 4),
            ("例え.jp", 1), ("hotmail.co.jp", 2)]),
    "zh": (["en"],
           [("lei", "雷"), ("fang", "芳"), ("wei", "伟"), ("na", "娜"), ("jing", "静"), ("min", "敏"),
            ("meimei", "梅梅"), ("qiang", "强"), ("yang", "洋"), ("xiuying", "秀英")],
           [("li", "李"), ("wang", "王"), ("zhang", "张"), ("liu", "刘"), ("chen", "陈"), ("yang", "杨"),
            ("han", "韩"), ("zhao", "赵"), ("huang", "黄"), ("zhou", "周")],
           "lf0",
           [("163.com", 10), ("126.com", 6), ("qq.com", 12), ("foxmail.com", 3), ("gmail.com", 4),
            ("sina.com", 3), ("outlook.com", 2)]),
    "ko": (["en"],
           [("minjun", "민준"), ("seoyeon", "서연"), ("jiwoo", "지우"), ("hayoon", "하윤"), ("doyun", "도윤")],
           [("kim", "김"), ("lee", "이"), ("park", "박"), ("choi", "최"), ("jung", "정")],
           "lf0",
           [("naver.com", 10), ("daum.net", 6), ("gmail.com", 6), ("hanmail.net", 3)]),
    "ru": (["en"],
           [("ivan", "Иван"), ("olga", "Ольга"), ("dmitry", "Дмитрий"), ("anna", "Анна"), ("sergey", "Сергей"),
            ("natalia", "Наталья"), ("alexey", "Алексей"), ("elena", "Елена")],
           [("petrov", "Петров"), ("ivanov", "Иванов"), ("smirnov", "Смирнов"), ("kuznetsov", "Кузнецов"),
            ("popov", "Попов"), ("sokolov", "Соколов"), ("volkov", "Волков")],
           "fl",
           [("mail.ru", 12), ("yandex.ru", 12), ("gmail.com", 6), ("rambler.ru", 3), ("bk.ru", 2)]),
    "ar": (["ar"],
           [("mohammed", "محمد"), ("ahmed", "أحمد"), ("layla", "ليلى"), ("omar", "عمر"), ("fatima", "فاطمة"),
            ("youssef", "يوسف"), ("mariam", "مريم"), ("khalid", "خالد"), ("nour", "نور")],
           [("alali", "العلي"), ("hassan", "حسن"), ("khalil", "خليل"), ("mansour", "منصور"),
            ("haddad", "حداد"), ("saleh", "صالح"), ("benali", "بن علي")],
           "fl",
           [("gmail.com", 12), ("hotmail.com", 10), ("yahoo.com", 6), ("outlook.com", 5), ("live.com", 2)]),
    "in": (["en"],
           [("priya", "प्रिया"), ("rahul", "राहुल"), ("amit", "अमित"), ("anjali", "अंजलि"), ("vikram", "विक्रम"),
            ("sunita", "सुनीता"), ("arjun", "अर्जुन")],
           [("sharma", "शर्मा"), ("verma", "वर्मा"), ("gupta", "गुप्ता"), ("singh", "सिंह"), ("kumar", "कुमार"),
            ("patel", "पटेल")],
           "fl",
           [("rediffmail.com", 8), ("gmail.com", 14), ("yahoo.co.in", 6), ("outlook.com", 3)]),
    "gr": (["en"],
           [("sofia", "Σοφία"), ("giorgos", "Γιώργος"), ("eleni", "Ελένη"), ("nikos", "Νίκος"),
            ("maria", "Μαρία"), ("dimitris", "Δημήτρης")],
           [("papadopoulou", "Παπαδοπούλου"), ("papadopoulos", "Παπαδόπουλος"), ("georgiou", "Γεωργίου"),
            ("nikolaou", "Νικολάου"), ("oikonomou", "Οικονόμου")],
           "fl",
           [("gmail.com", 10), ("yahoo.gr", 5), ("hotmail.com", 4), ("otenet.gr", 3)]),
    "cz": (["en"],
           [("jan", "Jan"), ("petr", "Petr"), ("tereza", "Tereza"), ("jiri", "Jiří"), ("katerina", "Kateřina")],
           [("novak", "Novák"), ("svoboda", "Svoboda"), ("dvorak", "Dvořák"), ("cerny", "Černý"),
            ("prochazka", "Procházka")],
           "fl",
           [("seznam.cz", 12), ("gmail.com", 6), ("email.cz", 4), ("centrum.cz", 3)]),
    "pl": (["en"],
           [("katarzyna", "Katarzyna"), ("piotr", "Piotr"), ("agnieszka", "Agnieszka"), ("lukasz", "Łukasz"),
            ("malgorzata", "Małgorzata"), ("pawel", "Paweł")],
           [("wojcik", "Wójcik"), ("kowalski", "Kowalski"), ("nowak", "Nowak"), ("wisniewski", "Wiśniewski"),
            ("zielinska", "Zielińska"), ("lewandowski", "Lewandowski")],
           "fl",
           [("wp.pl", 10), ("o2.pl", 8), ("onet.pl", 6), ("gmail.com", 8), ("interia.pl", 4)]),
}
CULTURE_WEIGHTS = {"us": 20, "gb": 8, "de": 12, "fr": 7, "es": 6, "br": 9, "pt": 3, "it": 4, "ja": 8,
                   "zh": 7, "ko": 3, "ru": 4, "ar": 5, "in": 5, "gr": 2, "cz": 2, "pl": 3}
NICKNAMES = ["bobby", "jojo", "mimi", "lulu", "kiki", "zeze", "tito", "nando", "dudu", "coco", "sunny",
             "happy", "darkstar", "ninja", "gamer", "crypto", "moon", "tiger", "dragon", "angel",
             "sweetpea", "bluebird", "skywalker", "pixel", "rocket"]
TAGS = ["news", "shop", "bank", "crypto", "exchange", "mail", "promo", "info"]
ROLES = ["info", "news", "office", "kontakt", "contact", "sales", "billing", "hr", "admin", "team"]
COMPANY = {"acme.de", "eng.acme.de", "mail.bigcorp.co.uk", "bigcorp.co.uk", "initech.com", "globex.com"}
# A second domain for the same local part: a longer one that ends with the first, or a sibling.
DOMAIN_PAIRS = {"yahoo.com": "yahoo.com.br", "yahoo.com.br": "yahoo.com", "hotmail.com": "hotmail.com.br",
                "outlook.com": "outlook.com.br", "acme.de": "eng.acme.de", "eng.acme.de": "acme.de",
                "bigcorp.co.uk": "mail.bigcorp.co.uk", "mail.bigcorp.co.uk": "bigcorp.co.uk",
                "gmail.com": "googlemail.com", "me.com": "icloud.com", "yahoo.co.uk": "yahoo.com",
                "hotmail.fr": "hotmail.com", "bücher.de": "buecher.de"}


def _tables():
    out = {}
    for key, (locales, firsts, lasts, order, providers) in CULTURES.items():
        domains = [d for d, w in providers for _ in range(w)]
        out[key] = (locales, firsts, lasts, order, domains)
    return out


_TABLES = _tables()
_CULTURE_LIST = [c for c, w in CULTURE_WEIGHTS.items() for _ in range(w)]


def _display(order, first, last):
    if order == "lf":
        return f"{last} {first}"
    if order == "lf0":
        return last + first
    return f"{first} {last}"


def _local(rng, f, l, culture, domain):
    """One local part in a real-world pattern for first name f and last name l."""
    r = rng.random()
    year = str(rng.randint(1950, 2006))
    if domain in ("qq.com", "foxmail.com") and r < 0.6:
        return str(rng.randint(10000, 3999999999))  # QQ numbers
    if domain in COMPANY and r < 0.15:
        return rng.choice(ROLES)
    if r < 0.22:
        return f"{f}.{l}"
    if r < 0.32:
        return f + l
    if r < 0.40:
        return f"{f[0]}.{l}"
    if r < 0.46:
        return l
    if r < 0.52:
        return f"{f}_{l}"
    if r < 0.57:
        return f"{f}-{l}"
    if r < 0.62:
        return f"{f[0]}{l}"
    if r < 0.70:
        return f"{f[0]}{l[0]}{rng.choice([year, year[2:], str(rng.randint(1, 999))])}"
    if r < 0.78:
        return f + rng.choice([year, year[2:], str(rng.randint(1, 99))])
    if r < 0.83:
        return f"{f}.{l}{rng.randint(1, 99)}"
    if r < 0.88:
        return rng.choice(NICKNAMES) + rng.choice(["", str(rng.randint(1, 9999)), "." + l, "_" + f])
    if r < 0.92:
        return f"{l}.{f}"
    if r < 0.95:
        return f
    return f"{f}.{l}" if culture in ("ja", "zh", "ko") else f"{f}{rng.randint(100, 99999)}"


def generate(n, seed=1):
    """n (email, name, locale) tuples; addresses distinct, ASCII case-insensitively."""
    rng = random.Random(seed)
    # The classic pairs, whatever the seed.
    fixed = [("john.smith@gmail.com", "John Smith", "en"), ("smith@gmail.com", "Jane Smith", "en-GB"),
             ("maria@yahoo.com", "María López", "es"), ("maria@yahoo.com.br", "Maria Souza", "pt-BR"),
             ("anna+news@acme.de", "Anna Vogel", "de"), ("news@acme.de", "Newsroom ACME", "de"),
             ("lena@acme.de", "Lena Hoffmann", "de-AT"), ("lena@eng.acme.de", "Lena Vogel", "de"),
             ("j.doe@mail.bigcorp.co.uk", "Jane Doe", "en-GB"), ("doe@bigcorp.co.uk", "John Doe", "en-GB")]
    if n < 100:
        fixed = []
    seen = {e.lower() for e, _, _ in fixed}
    out = []
    n_random = n - len(fixed)

    def add(email, name, locale):
        key = email.lower()
        if key in seen or len(out) >= n_random:
            return False
        local = email.rpartition("@")[0]
        if len(local) > 64 or local.startswith(".") or local.endswith(".") or ".." in local:
            return False
        seen.add(key)
        out.append((email, name, locale))
        return True

    while len(out) < n_random:
        culture = rng.choice(_CULTURE_LIST)
        locales, firsts, lasts, order, domains = _TABLES[culture]
        (f, fn), (l, ln) = rng.choice(firsts), rng.choice(lasts)
        domain = rng.choice(domains)
        locale = rng.choice(locales)
        name = _display(order, fn, ln)
        local = _local(rng, f, l, culture, domain)
        if "obrien" in local and rng.random() < 0.4:
            local = local.replace("obrien", "o'brien")  # an apostrophe is atext; HTML escapes it
        r = rng.random()
        if r < 0.06:
            local += "+" + rng.choice(TAGS)
        email = f"{local}@{domain}"
        if rng.random() < 0.02:  # some lists keep the capitals people typed
            email = email[0].upper() + email[1:] if rng.random() < 0.5 else f"{local.title()}@{domain.title()}"
        if not add(email, name, locale):
            continue
        # Pairs on purpose: the shorter partner of a suffix pair, or the same person at a sibling domain.
        p = rng.random()
        if p < 0.04 and ("." in local or "_" in local or "-" in local):
            tail = local.replace("_", ".").replace("-", ".").split("+")[0].split(".")[-1]
            _, fn2 = rng.choice(firsts)
            add(f"{tail}@{domain}", _display(order, fn2, ln), rng.choice(locales))
        elif p < 0.06 and "+" in local:
            add(f"{local.split('+')[1]}@{domain}", _display(order, fn, ln) + " (Newsletter)", locale)
        elif p < 0.09 and domain in DOMAIN_PAIRS:
            _, fn2 = rng.choice(firsts)
            add(f"{local}@{DOMAIN_PAIRS[domain]}", _display(order, fn2, ln), rng.choice(locales))
    # Spread the fixed pairs through the audience rather than at its end.
    for i, row in enumerate(fixed):
        out.insert(rng.randint(0, len(out)) if i % 2 == 0 else out.index(fixed[i - 1]) + 1, row)
    return out


def write_csv(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["email", "name", "locale"])
        w.writerows(rows)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(f"usage: {sys.argv[0]} N PATH [SEED]")
    write_csv(sys.argv[2], generate(int(sys.argv[1]), int(sys.argv[3]) if len(sys.argv) == 4 else 1))
