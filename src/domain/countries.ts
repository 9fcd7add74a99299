// The assigned ISO 3166-1 alpha-2 country codes (249, as of the 2024 edition), upper case. A code of
// the right shape that is not here names no country: user-assigned (AA, QM-QZ, XA-XZ, ZZ; Kosovo's
// XK is one), exceptionally reserved (EU, UK) or unassigned. Countries in checks, region groups and
// region rules must be one of these; the edge's placeholders (XX unknown, T1 Tor) mean "no country".
// Pure: a static list.

const CODES = `
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
DE DJ DK DM DO DZ
EC EE EG EH ER ES ET
FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY
HK HM HN HR HT HU
ID IE IL IM IN IO IQ IR IS IT
JE JM JO JP
KE KG KH KI KM KN KP KR KW KY KZ
LA LB LC LI LK LR LS LT LU LV LY
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
NA NC NE NF NG NI NL NO NP NR NU NZ
OM
PA PE PF PG PH PK PL PM PN PR PS PT PW PY
QA
RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ
UA UG UM US UY UZ
VA VC VE VG VI VN VU
WF WS
YE YT
ZA ZM ZW
`;

export const ASSIGNED_COUNTRIES: ReadonlySet<string> = new Set(CODES.trim().split(/\s+/));

/** Whether `code` (upper case) is an assigned ISO 3166-1 alpha-2 country. */
export const isAssignedCountry = (code: string): boolean => ASSIGNED_COUNTRIES.has(code);

export const UNASSIGNED_COUNTRY_MESSAGE = "not an assigned ISO 3166-1 alpha-2 country code";

/** A country the edge reported (request.cf.country), or undefined for its placeholders (XX, T1) and anything unassigned. */
export const edgeCountryCode = (raw: unknown): string | undefined =>
  typeof raw === "string" && isAssignedCountry(raw.toUpperCase()) ? raw.toUpperCase() : undefined;
