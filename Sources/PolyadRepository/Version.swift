/// This build's version.
public enum PolyadVersion {
    public static let string = "0.1.0"
}
