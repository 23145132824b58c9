/**
 * `geo:` URIs (RFC 5870) as Matrix m.location carries them. Parsing is strict because the URI is
 * user input that ends up as coordinates on the network: WGS84 only, decimal degrees in range,
 * a non-negative uncertainty, and nothing the grammar does not allow.
 */
interface GeoPoint {
  lat: number;
  lon: number;
  /** Uncertainty in whole metres (`u=`). */
  accuracy?: number;
}

const GEO_URI =
  /^geo:(-?\d{1,3}(?:\.\d{1,20})?),(-?\d{1,3}(?:\.\d{1,20})?)(?:,-?\d{1,12}(?:\.\d{1,20})?)?((?:;[A-Za-z0-9-]{1,64}(?:=(?:[A-Za-z0-9\-_.!~*'()[\]:&+$]|%[0-9A-Fa-f]{2}){1,256})?)*)$/i;
const PARAM = /;([A-Za-z0-9-]+)(?:=([^;]*))?/g;
const UNCERTAINTY = /^\d{1,12}(?:\.\d{1,20})?$/;

/** The point a geo URI names, or undefined when it is not a valid WGS84 geo URI. */
export function parseGeoUri(uri: unknown): GeoPoint | undefined {
  if (typeof uri !== "string" || uri.length > 512) return undefined;
  const match = GEO_URI.exec(uri);
  if (match === null) return undefined;
  const lat = Number(match[1]);
  const lon = Number(match[2]);
  if (!(Math.abs(lat) <= 90 && Math.abs(lon) <= 180)) return undefined;
  const point: GeoPoint = { lat, lon };
  const params = [...(match[3] ?? "").matchAll(PARAM)];
  for (const [index, param] of params.entries()) {
    const name = (param[1] ?? "").toLowerCase();
    const value = param[2];
    if (name === "crs") {
      // RFC 5870 §3.3: crs comes first; any system but WGS84 would move the point.
      if (index !== 0 || value?.toLowerCase() !== "wgs84") return undefined;
    } else if (name === "u") {
      if (value === undefined || !UNCERTAINTY.test(value) || point.accuracy !== undefined) {
        return undefined;
      }
      point.accuracy = Math.round(Number(value));
    }
  }
  return point;
}

/** Plain decimal with at most 7 places (about 1 cm), never exponent notation. */
export function formatCoordinate(n: number): string {
  const fixed = n.toFixed(7).replace(/\.?0+$/, "");
  return fixed === "-0" ? "0" : fixed;
}

export function formatGeoUri(point: GeoPoint): string {
  const base = `geo:${formatCoordinate(point.lat)},${formatCoordinate(point.lon)}`;
  return point.accuracy === undefined ? base : `${base};u=${Math.round(point.accuracy)}`;
}
