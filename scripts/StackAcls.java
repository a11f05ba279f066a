// Creates the secured stack's ACLs in one JVM (scripts/stack up --secure runs it with
// Java's single-file source launcher on the broker's classpath; kafka-acls is not among
// the broker jars). Arguments: an admin client properties file and an ACL file whose lines
// are `principal RESOURCE_TYPE PATTERN_TYPE name OPERATION` (blank lines and # skipped).
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class StackAcls {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (var reader = Files.newBufferedReader(Path.of(args[0]))) {
            props.load(reader);
        }
        List<AclBinding> acls = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of(args[1]))) {
            line = line.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String[] f = line.split("\\s+");
            acls.add(new AclBinding(
                new ResourcePattern(
                    ResourceType.fromString(f[1]), f[3], PatternType.fromString(f[2])),
                new AccessControlEntry(
                    f[0], "*", AclOperation.fromString(f[4]), AclPermissionType.ALLOW)));
        }
        try (Admin admin = Admin.create(props)) {
            admin.createAcls(acls).all().get(60, TimeUnit.SECONDS);
        }
        System.out.println("created " + acls.size() + " ACLs");
    }
}
